"""Reading what the children say: trainer log events, Job outcomes, pod scheduling and exits.

The trainer prints one JSON event per line, declared with its writer in
:mod:`kubetune.api.contract.events`: progress per step, phases for the preflight report,
checkpoints, a resume, evaluation and export, and the run's ``result.json`` last.
:func:`parse_log` folds those lines into a :class:`TrainerLog`; the other functions read the
Kubernetes objects the operator observes. Pure: no I/O, no clock. Must not import the trainer
(controllers and trainer are independent; the contract is in the API layer).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from kubetune.api.contract import events
from kubetune.api.contract.result import RunResult
from kubetune.api.v1alpha1.finetunejob import LOSS_HISTORY_POINTS, CheckpointRef, PreflightSummary, Progress

Obj = dict[str, Any]
JobOutcome = Literal["missing", "active", "suspended", "complete", "failed"]


@dataclasses.dataclass
class TrainerLog:
    """What one container's log says, newest value of each kind."""

    preflight: PreflightSummary | None = None
    progress: Progress | None = None
    losses: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # (step, loss), in log order
    checkpoints: list[CheckpointRef] = dataclasses.field(default_factory=list)
    phase: str | None = None
    resumed_from_step: int | None = None
    result: RunResult | None = None


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
    """Fold the trainer's events (:func:`kubetune.api.contract.events.parse`) into a
    :class:`TrainerLog`; other lines are ignored."""
    out = TrainerLog()
    seen: dict[int, CheckpointRef] = {}
    for line in text.splitlines():
        event = events.parse(line)
        if isinstance(event, events.ProgressEvent):
            out.progress = event.to_status()
            loss = events.finite_loss(event)
            if loss is not None:
                out.losses.append((event.step, loss))
            continue
        if event is None:
            continue
        if event.phase == events.RESULT:
            out.result = events.result_of(event) or out.result
            continue
        summary = events.preflight_of(event)
        if summary is not None:
            out.preflight = summary
        written = events.checkpoint_of(event)
        if written is not None:
            seen[written.step] = written
        resumed = events.resumed_of(event)
        if resumed is not None:
            # The checkpoint a run resumed from is complete, even when the log that wrote it
            # (a pod stopped by SIGTERM) was never read.
            out.resumed_from_step = resumed.step
            seen.setdefault(resumed.step, resumed)
        if event.phase and event.phase != events.CHECKPOINT:
            out.phase = event.phase
    for ref in out.result.checkpoints if out.result is not None else []:
        seen.setdefault(ref.step, ref)
    out.checkpoints = [seen[k] for k in sorted(seen)]
    return out


def resumed_from(log: TrainerLog | None) -> int | None:
    """The checkpoint step the trainer's latest run resumed from: its log line while it runs,
    the result's ``training.resumedFromStep`` once it finished (the last line, so never cut off
    by a log tail)."""
    if log is None:
        return None
    training = log.result.training if log.result is not None else None
    if training is not None and training.resumed_from_step is not None:
        return training.resumed_from_step
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
