"""The trainer's JSON log events: one object per line, written by the trainer, read by the operator.

A training pod prints (``kubetune.trainer.progress.JsonLinesSink``) and the operator reads from
the pod's log (``kubetune.controllers.finetunejob.observe``); ``kubetune run --nproc`` reads
rank 0's lines the same way. Two kinds, told apart by ``"event"``:

- ``{"event": "progress", "step", "total_steps", "epoch", "loss", "learning_rate",
  "tokens_per_second", "eta_seconds"[, "eval_loss"]}`` once per logged optimizer step
  (:class:`ProgressEvent`; snake_case keys, every one but ``eval_loss`` present);
- ``{"event": "phase", "phase": ..., "message": ..., **detail}`` when a phase starts or
  something notable happens (:class:`PhaseEvent`). The phases whose detail the operator reads
  have a writer and a reader here: ``preflight`` (:func:`preflight`), ``checkpoint``
  (:func:`checkpoint`), ``training`` after a resume (:func:`resumed`) and ``result``, the run's
  last line (:func:`result`, the whole ``result.json``).

:func:`parse` turns a line back into its event; a line that is not one (a log record, a
truncated or hand-written object missing a field) is None. Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Final

import pydantic

from kubetune.api.contract.result import RunResult
from kubetune.api.v1alpha1.finetunejob import CheckpointRef, PreflightSummary, Progress

# phases the trainer reports (PhaseEvent.phase)
PREFLIGHT: Final = "preflight"
LOADING: Final = "loading"
TRAINING: Final = "training"
CHECKPOINT: Final = "checkpoint"
EVALUATING: Final = "evaluating"
EXPORTING: Final = "exporting"
RESULT: Final = "result"


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """One optimizer step's report."""

    step: int
    total_steps: int
    epoch: float
    loss: float
    learning_rate: float
    tokens_per_second: float  # effective (non-padding) tokens
    eta_seconds: float
    eval_loss: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event": "progress", **dataclasses.asdict(self)}

    def to_status(self, update_time: str | None = None) -> Progress:
        """The API ``status.progress`` this event reports (``updateTime`` is the caller's clock)."""
        percent = 100.0 * self.step / self.total_steps if self.total_steps else 0.0
        return Progress(
            step=self.step,
            total_steps=self.total_steps,
            epoch=round(self.epoch, 4),
            loss=self.loss,
            eval_loss=self.eval_loss,
            learning_rate=self.learning_rate,
            tokens_per_second=round(self.tokens_per_second, 1),
            eta_seconds=round(self.eta_seconds, 1),
            summary=f"{self.step}/{self.total_steps} ({percent:.0f}%)",
            update_time=update_time,
        )


@dataclasses.dataclass(frozen=True)
class PhaseEvent:
    """A phase started or something notable happened (``detail`` carries its data)."""

    phase: str
    message: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"event": "phase", "phase": self.phase, "message": self.message, **self.detail}


Event = ProgressEvent | PhaseEvent
_NUMBERS: Final = {f.name: f.type for f in dataclasses.fields(ProgressEvent)}


def to_line(event: Event) -> str:
    """The log line for ``event`` (no newline)."""
    return json.dumps(event.to_json(), default=str)


def from_json(data: Any) -> Event | None:
    """The event a decoded log line holds; None for any other JSON value."""
    if not isinstance(data, dict):
        return None
    kind = data.get("event")
    if kind == "progress":
        return _progress(data)
    if kind == "phase" and isinstance(data.get("phase"), str):
        detail = {k: v for k, v in data.items() if k not in ("event", "phase", "message")}
        return PhaseEvent(data["phase"], str(data.get("message", "")), detail)
    return None


def parse(line: str) -> Event | None:
    """The event one log line holds; None for a line that is not an event."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        return from_json(json.loads(line))
    except ValueError:
        return None


def _progress(data: dict[str, Any]) -> ProgressEvent | None:
    values: dict[str, Any] = {}
    for name, kind in _NUMBERS.items():
        value = data.get(name)
        if value is None and name == "eval_loss":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # every field but eval_loss is written by the trainer
        values[name] = int(value) if kind == "int" else float(value)
    return ProgressEvent(**values)


def finite_loss(event: ProgressEvent) -> float | None:
    """The step's loss when it is a number (a diverged run logs NaN or infinity)."""
    return event.loss if math.isfinite(event.loss) else None


# --- phases with a detail the operator reads ------------------------------------------------


def preflight(passed: bool, summary: PreflightSummary) -> PhaseEvent:
    """The preflight's report (``status.preflight``)."""
    return PhaseEvent(
        PREFLIGHT, "passed" if passed else "failed", {"passed": passed, "preflight": summary.to_wire()}
    )


def preflight_of(event: PhaseEvent) -> PreflightSummary | None:
    raw = event.detail.get("preflight") if event.phase == PREFLIGHT else None
    if not isinstance(raw, dict):
        return None
    try:
        return PreflightSummary.model_validate(raw)
    except pydantic.ValidationError:
        return None


def checkpoint(step: int, path: str) -> PhaseEvent:
    """A complete checkpoint was written."""
    return PhaseEvent(CHECKPOINT, f"checkpoint at step {step}", {"step": step, "path": path})


def checkpoint_of(event: PhaseEvent) -> CheckpointRef | None:
    step = _int(event.detail.get("step")) if event.phase == CHECKPOINT else None
    return None if step is None else CheckpointRef(step=step, path=str(event.detail.get("path", "")))


def resumed(step: int, path: str) -> PhaseEvent:
    """Training resumed from the complete checkpoint at ``path`` (step ``step``)."""
    return PhaseEvent(TRAINING, f"resumed from checkpoint at step {step}", {"checkpoint": path, "step": step})


def resumed_of(event: PhaseEvent) -> CheckpointRef | None:
    """The checkpoint a ``training`` event says the run resumed from."""
    if event.phase != TRAINING or "checkpoint" not in event.detail:
        return None
    step = _int(event.detail.get("step"))
    return None if step is None else CheckpointRef(step=step, path=str(event.detail["checkpoint"]))


def result(run: RunResult) -> PhaseEvent:
    """The run's last event: the whole ``result.json``."""
    return PhaseEvent(RESULT, run.outcome, {"result": run.model_dump(mode="json", exclude_none=True)})


def result_of(event: PhaseEvent) -> RunResult | None:
    """The result a ``result`` event carries; None when it is not a valid ``result.json``."""
    raw = event.detail.get("result") if event.phase == RESULT else None
    if not isinstance(raw, dict):
        return None
    try:
        return RunResult.model_validate(raw)
    except pydantic.ValidationError:
        return None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
