"""Reading what the children say: trainer log events, Job outcomes, pod scheduling and exits.

The trainer prints one JSON object per line (``kubetune.trainer.progress.JsonLinesSink``):
``{"event": "progress", ...}`` per step and ``{"event": "phase", "phase": ..., ...}`` for the
preflight report, checkpoints, a resume, evaluation, export and, when the trainer emits it, the
final ``result``. :func:`parse_log` folds those lines into a :class:`TrainerLog`; the other
functions read the Kubernetes objects the operator observes. Pure: no I/O, no clock. Must not
import the trainer (controllers and trainer are independent; the line format is the contract).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Literal

from kubetune.api.v1alpha1.finetunejob import LOSS_HISTORY_POINTS, CheckpointRef, PreflightSummary, Progress

Obj = dict[str, Any]
JobOutcome = Literal["missing", "active", "suspended", "complete", "failed"]
EXIT_USER_ERROR = 1
EXIT_GATE_NOT_MET = 2
EXIT_TERMINATED = 143


@dataclasses.dataclass
class TrainerLog:
    """What one container's log says, newest value of each kind."""

    preflight: PreflightSummary | None = None
    progress: Progress | None = None
    losses: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # (step, loss), in log order
    checkpoints: list[CheckpointRef] = dataclasses.field(default_factory=list)
    phase: str | None = None
    resumed_from_step: int | None = None
    result: Obj | None = None


def _progress(event: Obj) -> Progress:
    step, total = int(event.get("step", 0)), int(event.get("total_steps", 0))
    percent = 100.0 * step / total if total else 0.0
    return Progress(
        step=step,
        total_steps=total,
        epoch=round(float(event.get("epoch", 0.0)), 4),
        loss=event.get("loss"),
        eval_loss=event.get("eval_loss"),
        learning_rate=event.get("learning_rate"),
        tokens_per_second=round(float(event.get("tokens_per_second") or 0.0), 1),
        eta_seconds=round(float(event.get("eta_seconds") or 0.0), 1),
        summary=f"{step}/{total} ({percent:.0f}%)",
    )


def loss_history(
    previous: Progress | None, losses: list[tuple[int, float]]
) -> tuple[list[float] | None, int | None]:
    """``status.progress.lossHistory`` and ``lossHistoryStep`` after reading ``losses``: the
    previous history, then the losses of steps past the previous history's last step (a re-read
    log tail adds nothing twice; a run resumed from an earlier checkpoint continues the line),
    the newest :data:`LOSS_HISTORY_POINTS`, rounded to 4 significant digits to keep the status
    patch small. The last step is kept apart from ``progress.step``, which the training pod's own
    status reports move ahead of what the operator has read."""
    history = list(previous.loss_history or []) if previous is not None else []
    last = previous.loss_history_step if previous is not None and previous.loss_history else None
    new = [(step, loss) for step, loss in losses if last is None or step > last]
    history += [float(f"{loss:.4g}") for _, loss in new]
    last = new[-1][0] if new else last
    return (history[-LOSS_HISTORY_POINTS:] or None), (last if history else None)


def parse_log(text: str) -> TrainerLog:
    """Fold the trainer's JSON lines into a :class:`TrainerLog`; other lines are ignored."""
    out = TrainerLog()
    seen: dict[int, CheckpointRef] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("event")
        if kind == "progress":
            out.progress = _progress(event)
            if isinstance(event.get("loss"), (int, float)) and math.isfinite(event["loss"]):
                out.losses.append((out.progress.step, float(event["loss"])))
            continue
        if kind == "result" and isinstance(event.get("result"), dict):
            out.result = event["result"]
            continue
        if kind != "phase":
            continue
        phase = str(event.get("phase", ""))
        if phase == "preflight" and isinstance(event.get("preflight"), dict):
            out.preflight = PreflightSummary.model_validate(event["preflight"])
        elif phase == "checkpoint" and "step" in event:
            step = int(event["step"])
            seen[step] = CheckpointRef(step=step, path=str(event.get("path", "")))
        elif phase == "training" and "checkpoint" in event and "step" in event:
            # The checkpoint a run resumed from is complete, even when the log that wrote it
            # (a pod stopped by SIGTERM) was never read.
            step = int(event["step"])
            out.resumed_from_step = step
            seen.setdefault(step, CheckpointRef(step=step, path=str(event["checkpoint"])))
        elif phase == "result" and isinstance(event.get("result"), dict):
            out.result = event["result"]
            continue
        if phase and phase != "checkpoint":
            out.phase = phase
    for ref in (out.result or {}).get("checkpoints") or []:
        if isinstance(ref, dict) and "step" in ref:
            step = int(ref["step"])
            seen.setdefault(
                step, CheckpointRef(step=step, path=str(ref.get("path", "")), time=ref.get("time"))
            )
    out.checkpoints = [seen[k] for k in sorted(seen)]
    return out


def resumed_from(log: TrainerLog | None) -> int | None:
    """The checkpoint step the trainer's latest run resumed from: its log line while it runs,
    the result's ``training.resumedFromStep`` once it finished (the last line, so never cut off
    by a log tail)."""
    if log is None:
        return None
    training = (log.result or {}).get("training")
    if isinstance(training, dict) and isinstance(training.get("resumedFromStep"), int):
        return int(training["resumedFromStep"])
    return log.resumed_from_step


# --- Jobs and pods ----------------------------------------------------------------------------


def _true_condition(obj: Obj, type: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type and cond.get("status") == "True":
            return dict(cond)
    return None


def job_outcome(job: Obj | None) -> tuple[JobOutcome, str, str]:
    """(outcome, reason, message) of a batch Job; reason/message from its terminal condition."""
    if job is None:
        return "missing", "", ""
    for type, outcome in (("Complete", "complete"), ("Failed", "failed")):
        cond = _true_condition(job, type)
        if cond is not None:
            return outcome, str(cond.get("reason", "")), str(cond.get("message", ""))  # type: ignore[return-value]
    if (job.get("spec") or {}).get("suspend"):
        return "suspended", "", ""
    return "active", "", ""


@dataclasses.dataclass(frozen=True)
class Exit:
    """One container termination seen on a pod (current or last state)."""

    pod: str
    exit_code: int
    message: str
    finished_at: str | None


def exits(pods: list[Obj], container: str) -> list[Exit]:
    """Every termination of ``container`` visible on ``pods`` (lastState then state)."""
    out: list[Exit] = []
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name", ""))
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") != container:
                continue
            for key in ("lastState", "state"):
                term = (cs.get(key) or {}).get("terminated")
                if term:
                    out.append(
                        Exit(
                            pod=name,
                            exit_code=int(term.get("exitCode", 0)),
                            message=str(term.get("message") or term.get("reason") or "").strip(),
                            finished_at=term.get("finishedAt"),
                        )
                    )
    return out


def restarts(pods: list[Obj], container: str) -> int:
    return sum(
        int(cs.get("restartCount", 0))
        for pod in pods
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
        if cs.get("name") == container
    )


def unschedulable(pods: list[Obj]) -> str | None:
    """The scheduler's message when a pod cannot be placed (PodScheduled False/Unschedulable)."""
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                return str(cond.get("message") or "pod is unschedulable")
    return None


def finished_or_terminating(pod: Obj) -> bool:
    """A pod being deleted or in a terminal phase (the Job already counts it, or will)."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) or phase in ("Succeeded", "Failed")


def running(pods: list[Obj], container: str) -> bool:
    return any(
        "running" in (cs.get("state") or {})
        for pod in pods
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
        if cs.get("name") == container
    )


def has_pods(job: Obj | None) -> bool:
    """Whether the Job controller reports any pod of ``job`` (active, finished or terminating)."""
    st = (job or {}).get("status") or {}
    return any(int(st.get(key) or 0) for key in ("active", "ready", "succeeded", "failed", "terminating"))


def missing_pods(job: Obj | None, pods: list[Obj]) -> bool:
    """Fewer live pods than the Job runs at once (``parallelism``, 1 by default)."""
    wanted = int(((job or {}).get("spec") or {}).get("parallelism") or 1)
    return len([p for p in pods if not finished_or_terminating(p)]) < wanted


def newest_message(events: list[Obj]) -> str | None:
    """The message of the most recent of ``events`` (core/v1 Events), None when there is none."""

    def when(event: Obj) -> str:
        meta = event.get("metadata") or {}
        return str(
            event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp") or ""
        )

    newest = max(events, key=when, default=None)
    return str(newest.get("message") or "") or None if newest is not None else None


def first_line(message: str) -> str:
    return next((line.strip() for line in message.splitlines() if line.strip()), "")
