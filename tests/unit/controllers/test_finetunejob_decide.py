"""The FineTuneJob state machine, as a pure function of the job and its observed children."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.cli import status as status_cli
from kubetune.controllers.finetunejob import decide, observe
from kubetune.controllers.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings()
DIGEST = "oci://registry.test/ml/bot@sha256:" + "a" * 64


def job(status: dict[str, Any] | None = None, **spec: Any) -> FineTuneJob:
    body: dict[str, Any] = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "bot", "namespace": "ml", "uid": "u1", "generation": 2},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "dataset": {"uri": "pvc://data/train.jsonl"},
            **spec,
        },
    }
    if status is not None:
        body["status"] = status
    return FineTuneJob.model_validate(body)


def k8s_job(condition: str | None = None, reason: str = "", suspend: bool = False) -> dict[str, Any]:
    conds = [{"type": condition, "status": "True", "reason": reason}] if condition else []
    return {"spec": {"suspend": suspend}, "status": {"conditions": conds}}


def pod(
    exit_code: int | None = None, message: str = "", running: bool = False, **status: Any
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "message": message}}
    elif running:
        state = {"running": {}}
    return {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {"nodeName": "gpu-node-0"} if running or exit_code is not None else {},
        "status": {"containerStatuses": [{"name": "trainer", "state": state, "restartCount": 0}], **status},
    }


def passed_preflight() -> dict[str, Any]:
    return {"preflight_job": k8s_job("Complete")}


def test_new_job_creates_children_and_validates() -> None:
    d = decide.decide(job(), decide.Observed(), SETTINGS, NOW)
    assert d.actions == ["create_children"]
    assert d.status.phase == "Validating" and d.status.observed_generation == 2
    assert [e.reason for e in d.events] == ["PreflightRunning", "PhaseValidating"]


def test_failed_preflight_fails_with_the_line_numbered_reason_and_never_trains() -> None:
    message = "train.jsonl:7: not valid JSON (Expecting ',' delimiter)"
    seen = decide.Observed(
        preflight_job=k8s_job("Failed", "BackoffLimitExceeded"),
        preflight_pods=[
            {
                "metadata": {"name": "p"},
                "status": {
                    "containerStatuses": [
                        {
                            "name": "preflight",
                            "state": {"terminated": {"exitCode": 1, "message": message + "\n"}},
                        }
                    ]
                },
            }
        ],
    )
    d = decide.decide(job({"phase": "Validating"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed"
    cond = next(c for c in d.status.conditions if c.type == "PreflightPassed")
    assert (cond.status, cond.reason, cond.message) == ("False", "PreflightFailed", message)
    assert "create_training" not in d.actions
    assert any(e.type == "Warning" and e.reason == "PreflightFailed" for e in d.events)


def test_unschedulable_gpu_pod_is_insufficient_gpu_and_nothing_is_recreated() -> None:
    unsched = pod(
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ]
    )
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(), training_pods=[unsched])
    d = decide.decide(job({"phase": "Pending"}, resources={"gpusPerNode": 8}), seen, SETTINGS, NOW)
    cond = next(c for c in d.status.conditions if c.type == "Scheduled")
    assert (cond.status, cond.reason) == ("False", "InsufficientGPU")
    assert d.status.phase == "Pending" and d.actions == []
    again = decide.decide(job(d.status.to_wire(), resources={"gpusPerNode": 8}), seen, SETTINGS, NOW)
    assert not [e for e in again.events if e.reason == "InsufficientGPU"]  # one event per transition


def test_suspend_while_training_suspends_the_job_and_resume_unsuspends_it() -> None:
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(), training_pods=[pod(running=True)])
    d = decide.decide(
        job({"phase": "Training", "checkpoints": [{"step": 8, "path": "/c/8"}]}, suspend=True),
        seen,
        SETTINGS,
        NOW,
    )
    assert d.actions == ["suspend_training"] and d.status.phase == "Suspended"
    assert "step 8" in next(c.message for c in d.status.conditions if c.type == "Suspended")
    seen.training_job = k8s_job(suspend=True)
    r = decide.decide(job(d.status.to_wire(), suspend=False), seen, SETTINGS, NOW)
    assert r.actions == ["resume_training"]
    cond = next(c for c in r.status.conditions if c.type == "Suspended")
    assert (cond.status, cond.reason) == ("False", "Resumed")


def test_gate_not_met_fails_without_registering_and_stops_retries() -> None:
    seen = decide.Observed(
        **passed_preflight(),
        training_job=k8s_job(),
        training_pods=[pod(2, "gate not met: loss improved 0.01 < 0.1")],
    )
    d = decide.decide(job({"phase": "Training"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed" and "stop_training" in d.actions and "create_adapter" not in d.actions
    gate = next(c for c in d.status.conditions if c.type == "GatePassed")
    assert (gate.status, gate.reason) == ("False", "GateNotMet")


def test_success_registers_an_adapter_only_with_a_pushed_digest() -> None:
    log = observe.TrainerLog(
        result={
            "gate": {"passed": True, "message": "ok"},
            "pushed": {"ref": DIGEST},
            "metrics": [{"name": "loss", "base": 2.0, "tuned": 1.0, "delta": 1.0}],
        }
    )
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job("Complete"), training_log=log)
    d = decide.decide(job({"phase": "Exporting"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Succeeded" and d.actions == ["create_adapter"] and d.adapter_ref == DIGEST
    assert d.status.adapter is not None and d.status.adapter.ref == DIGEST
    assert d.status.metrics[0].tuned == 1.0
    seen.training_log = observe.TrainerLog(result={"gate": {"passed": True}})
    plain = decide.decide(job({"phase": "Exporting"}), seen, SETTINGS, NOW)
    assert plain.status.phase == "Succeeded" and plain.actions == [] and plain.status.adapter is None


def test_deadline_exceeded_is_its_own_reason() -> None:
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job("Failed", "DeadlineExceeded"))
    d = decide.decide(job({"phase": "Training"}, activeDeadlineSeconds=60), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed"
    assert next(c for c in d.status.conditions if c.type == "Failed").reason == "DeadlineExceeded"


def test_no_step_for_longer_than_the_stall_timeout_is_stalled() -> None:
    status = {
        "phase": "Training",
        "progress": {"step": 5, "totalSteps": 50, "updateTime": "2026-01-01T11:00:00Z"},
    }
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(), training_pods=[pod(running=True)])
    d = decide.decide(job(status, stallTimeoutSeconds=600), seen, SETTINGS, NOW)
    stalled = next(c for c in d.status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "Stalled")


def test_trainer_log_lines_fold_into_preflight_progress_checkpoints_and_resume() -> None:
    text = "\n".join(
        [
            '{"event": "phase", "phase": "preflight", "passed": true, "preflight": {"passed": true, "rows": 9}}',
            '{"event": "phase", "phase": "training", "message": "resumed", "checkpoint": "/c/4", "step": 4}',
            '{"event": "progress", "step": 6, "total_steps": 12, "epoch": 0.5, "loss": 1.5, "learning_rate": 0.1, "tokens_per_second": 10, "eta_seconds": 3}',
            '{"event": "phase", "phase": "checkpoint", "message": "c", "step": 6, "path": "/c/6"}',
            "not json",
        ]
    )
    log = observe.parse_log(text)
    assert log.preflight is not None and log.preflight.rows == 9
    assert log.progress is not None and log.progress.summary == "6/12 (50%)"
    assert [c.step for c in log.checkpoints] == [6] and log.resumed_from_step == 4


def test_status_command_renders_phase_progress_metrics_and_adapter() -> None:
    obj = job(
        {
            "phase": "Succeeded",
            "progress": {"step": 10, "totalSteps": 10, "summary": "10/10 (100%)"},
            "metrics": [{"name": "loss", "base": 2.0, "tuned": 1.5, "delta": 0.5}],
            "adapter": {"name": "bot", "ref": DIGEST},
        }
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    text = status_cli.render(obj)
    assert "Phase:       Succeeded" in text and "10/10 (100%)" in text and DIGEST in text and "loss" in text
