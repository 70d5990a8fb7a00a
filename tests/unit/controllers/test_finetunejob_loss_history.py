"""``status.progress.lossHistory``: the bounded loss line the operator keeps from the trainer's
progress lines, so ``kubetune status ftj`` can draw a sparkline without reading logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.api.v1alpha1.finetunejob import LOSS_HISTORY_POINTS, Progress
from kubetune.controllers.finetunejob import decide, observe
from kubetune.controllers.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _lines(steps: range, total: int = 200) -> str:
    return "\n".join(
        json.dumps(
            {
                "event": "progress",
                "step": s,
                "total_steps": total,
                "epoch": 0.1,
                "loss": 3.0 - s / 100,
                "learning_rate": 1e-4,
                "tokens_per_second": 100.0,
                "eta_seconds": 1.0,
            }
        )
        for s in steps
    )


def test_progress_lines_fold_into_step_loss_pairs() -> None:
    log = observe.parse_log(_lines(range(1, 4)) + '\nnot json\n{"event": "progress", "step": 4, "loss": NaN}')
    assert log.losses == [(1, 2.99), (2, 2.98), (3, 2.97)]


def test_history_is_bounded_rounded_and_never_counts_a_reread_step_twice() -> None:
    first, step = observe.loss_history(None, observe.parse_log(_lines(range(1, 101))).losses)
    assert first is not None and len(first) == LOSS_HISTORY_POINTS and first[-1] == 2.0 and step == 100
    previous = Progress(step=100, loss=2.0, loss_history=first, loss_history_step=step)
    # the next read of the log tail repeats steps 91..100, then brings 101..103
    again, step = observe.loss_history(previous, observe.parse_log(_lines(range(91, 104))).losses)
    assert again == [*first[3:], 1.99, 1.98, 1.97] and step == 103
    one = Progress(step=1, loss=1.23456789, loss_history=[1.0], loss_history_step=1)
    assert observe.loss_history(one, [(2, 1.23456789)]) == ([1.0, 1.235], 2)
    assert observe.loss_history(None, []) == (None, None)


def test_steps_the_pod_reported_itself_do_not_hide_the_losses_the_operator_reads_later() -> None:
    # the training pod patched progress.step to 20 (its live status); the operator has read
    # only step 1's loss so far: steps 2..20 of the next log read still count
    reported = Progress(step=20, loss=2.8, loss_history=[2.99], loss_history_step=1)
    history, step = observe.loss_history(reported, observe.parse_log(_lines(range(1, 21))).losses)
    assert history is not None and len(history) == 20 and step == 20


def _job(status: dict[str, Any]) -> FineTuneJob:
    return FineTuneJob.model_validate(
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "bot", "namespace": "ml", "uid": "u1", "generation": 1},
            "spec": {"baseModel": {"uri": "pvc://data/model"}, "dataset": {"uri": "pvc://data/train.jsonl"}},
            "status": status,
        }
    )


def test_the_operator_carries_the_history_into_status_progress() -> None:
    running = {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {"nodeName": "n"},
        "status": {"containerStatuses": [{"name": "trainer", "state": {"running": {}}, "restartCount": 0}]},
    }
    seen = decide.Observed(
        preflight_job={"spec": {}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        training_job={"spec": {}, "status": {}},
        training_pods=[running],
        training_log=observe.parse_log(_lines(range(1, 6))),
    )
    d = decide.decide(_job({"phase": "Training"}), seen, Settings(default_registry="oci://r/ml"), NOW)
    assert d.status.progress is not None and d.status.progress.step == 5
    assert d.status.to_wire()["progress"]["lossHistory"] == [2.99, 2.98, 2.97, 2.96, 2.95]
