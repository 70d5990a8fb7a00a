"""The trainer's log events: what the trainer writes, the operator and ``kubetune run --nproc``
read back the same, and a line that is not a whole event is not read as one."""

from __future__ import annotations

import io

from kubetune.api.contract import events
from kubetune.api.contract.result import Pushed, RunResult, Training
from kubetune.api.v1alpha1.finetunejob import PreflightSummary
from kubetune.controllers.finetunejob import observe
from kubetune.trainer import progress

DIGEST = "oci://registry.test/ml/bot@sha256:" + "b" * 64


def step(n: int, loss: float = 1.25) -> events.ProgressEvent:
    return events.ProgressEvent(
        step=n,
        total_steps=90,
        epoch=n / 30,
        loss=loss,
        learning_rate=1e-3,
        tokens_per_second=900.0,
        eta_seconds=8.0,
    )


def test_json_lines_read_back_as_the_events_written() -> None:
    written: list[events.Event] = [
        events.PhaseEvent("training", "90 steps, 2 processes", {"totalSteps": 90, "worldSize": 2}),
        step(3),
        events.checkpoint(3, "/checkpoints/step-3"),
    ]
    stream = io.StringIO()
    sink = progress.JsonLinesSink(stream)
    for event in written:
        sink.emit(event)
    assert [events.parse(line) for line in stream.getvalue().splitlines()] == written


def test_other_lines_and_incomplete_events_are_not_events() -> None:
    assert events.parse('{"ts": "2026-01-01T00:00:00Z", "msg": "joined the process group"}') is None
    assert events.parse('{"event": "progress", "step": 1}') is None  # the trainer writes every field
    assert (
        events.parse(
            '{"event": "progress", "step": true, "total_steps": 2, "epoch": 0, "loss": 1, '
            '"learning_rate": 0, "tokens_per_second": 0, "eta_seconds": 0}'
        )
        is None
    )
    assert events.parse("not json") is None and events.parse("[1, 2]") is None
    # a result event whose document is not a result.json carries no result
    broken = events.PhaseEvent("result", "Succeeded", {"result": {"pushed": {"ref": DIGEST}}})
    assert events.result_of(broken) is None


def test_the_operator_reads_what_the_trainer_writes() -> None:
    summary = PreflightSummary(passed=True, rows=9, estimated_steps=12)
    run = RunResult(
        job="bot",
        outcome="Succeeded",
        exit_code=0,
        training=Training(steps=12, resumed_from_step=4),
        pushed=Pushed(ref=DIGEST, tag="bot-1"),
    )
    stream = io.StringIO()
    sink = progress.JsonLinesSink(stream)
    for event in (
        events.preflight(True, summary),
        events.resumed(4, "/checkpoints/step-4"),
        step(6, loss=1.5),
        step(7, loss=float("nan")),
        events.checkpoint(6, "/checkpoints/step-6"),
        events.result(run),
    ):
        sink.emit(event)
    log = observe.parse_log("a log record\n" + stream.getvalue())
    assert log.preflight == summary
    assert log.progress is not None and log.progress.summary == "7/90 (8%)" and log.progress.step == 7
    assert log.losses == [(6, 1.5)]  # a NaN loss is not drawn
    assert [(c.step, c.path) for c in log.checkpoints] == [
        (4, "/checkpoints/step-4"),
        (6, "/checkpoints/step-6"),
    ]
    assert log.result == run and observe.resumed_from(log) == 4


def test_a_progress_event_is_the_status_the_pod_and_the_operator_report() -> None:
    status = step(45).to_status("2026-01-01T00:00:00Z")
    assert status.summary == "45/90 (50%)" and status.epoch == 1.5 and status.tokens_per_second == 900.0
    assert status.update_time == "2026-01-01T00:00:00Z"
    assert observe.parse_log(events.to_line(step(45))).progress == step(45).to_status()
