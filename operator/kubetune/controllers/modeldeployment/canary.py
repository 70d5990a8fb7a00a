"""The canary state machine: spec + observed state + analysis + ``now`` in, the next state out.

Steps run in order: ``setWeight`` moves traffic and continues once the canary is ready;
``pause`` waits for its duration (or, without one, for ``kubetune.io/promote``); ``analysis``
waits for ``intervals`` consecutive passing analyses; ``experiment`` (an A/B test) holds the
split for its duration, records one analysis over all of it in ``status.experiment``, and then
pauses for a person (``decision: manual``) or acts on it (``auto``). While the canary takes traffic, every
analysis counts: a Fail adds to ``failures`` and ``failureLimit`` failures roll back, keeping
the stable pods; Inconclusive follows ``onInconclusive``; Prometheus unreachable always holds
(it can never promote). ``kubetune.io/promote: "true"`` skips the current step,
``"full"`` promotes at once; ``kubetune.io/abort`` rolls back.

No rollout is endless: a canary that goes ``progressDeadline`` without progress (a step begun,
an analysis passed; time in a pause step does not count) or sees ``analysis.maxInconclusive``
inconclusive analyses in a row (Prometheus unreachable included) is stalled, and ``onStalled``
says what that does: roll back, or hold with a ``RolloutStalled`` condition and one Warning Event.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from kubetune.api.v1alpha1.base import get_condition, parse_duration, rfc3339
from kubetune.api.v1alpha1.modeldeployment import (
    AnalysisStatus,
    ConditionType,
    ExperimentStatus,
    ExperimentStep,
    HistoryEntry,
    MetricVerdict,
    ModelDeploymentStatus,
    Reason,
    RolloutSpec,
    Verdict,
)

PROMOTE_ANNOTATION = "kubetune.io/promote"
ABORT_ANNOTATION = "kubetune.io/abort"
HISTORY_LIMIT = 20


@dataclass(frozen=True)
class Observed:
    """What reconcile saw this time: the desired revision, pod health, annotations."""

    desired_revision: str
    canary_ready: bool = False
    # The largest weight the canary's ready pods carry (None: any weight, while canary_ready).
    # With replica-ratio routing a higher weight needs more canary pods, which start only after
    # the weight is set; until they are ready the step waits.
    ready_weight: int | None = None
    canary_failed: str | None = None  # why the canary pods cannot start (e.g. startup probe)
    promote: str | None = None  # value of kubetune.io/promote, if set
    abort: bool = False


@dataclass(frozen=True)
class AnalysisOutcome:
    """One analysis run; ``reachable=False`` when Prometheus could not be queried."""

    verdict: Verdict
    metrics: list[MetricVerdict] = field(default_factory=list)
    reachable: bool = True
    message: str = ""


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass
class Decision:
    """The next status, the events to record, when to look again, annotations to clear.

    ``stalled`` is (reason, message) while a stalled rollout holds (``onStalled: hold``);
    reconcile turns it into the ``RolloutStalled`` condition.
    """

    status: ModelDeploymentStatus
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    clear_annotations: list[str] = field(default_factory=list)
    stalled: tuple[str, str] | None = None


def analysis_due(rollout: RolloutSpec, status: ModelDeploymentStatus, now: datetime) -> bool:
    """Whether reconcile should query Prometheus now (canary taking traffic, interval elapsed)."""
    if status.canary_revision is None or status.phase not in ("Progressing", "Paused"):
        return False
    if status.canary_weight <= 0 and not _at_analysis_step(rollout, status):
        return False
    last = status.analysis.time if status.analysis else None
    # The first analysis of a canary waits one interval after its step began, as later ones do:
    # run at once, it would see no canary traffic (Inconclusive; a rollback under
    # onInconclusive=rollback).
    last = last or status.step_started_at
    if last is None:
        return True
    return (now - _parse(last)).total_seconds() >= parse_duration(rollout.analysis.interval)


def experiment_due(rollout: RolloutSpec, status: ModelDeploymentStatus, now: datetime) -> str | None:
    """The window for an A/B experiment's closing analysis when it is due (its duration), else None."""
    i = status.current_step
    e = status.experiment
    if i is None or i >= len(rollout.steps) or status.phase not in ("Progressing", "Paused"):
        return None
    step = rollout.steps[i].experiment
    if step is None or e is None or e.verdict is not None:
        return None
    if e.revision != status.canary_revision or e.step != i:
        return None
    elapsed = (now - _parse(e.started_at)).total_seconds()
    return step.duration if elapsed >= parse_duration(step.duration) else None


def _at_analysis_step(rollout: RolloutSpec, status: ModelDeploymentStatus) -> bool:
    i = status.current_step
    return i is not None and i < len(rollout.steps) and rollout.steps[i].analysis is not None


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


class _Machine:
    def __init__(self, rollout: RolloutSpec, status: ModelDeploymentStatus, now: datetime) -> None:
        self.rollout = rollout
        self.s = status.model_copy(deep=True)
        self.now = now
        self.events: list[Event] = []
        self.requeue: float | None = None
        self.clear: list[str] = []
        self.stalled: tuple[str, str] | None = None
        self.experiment: AnalysisOutcome | None = None

    def record(self, action: str, message: str, reason: str, warning: bool = False) -> None:
        rev = self.s.canary_revision or self.s.stable_revision or ""
        self.s.history = [
            *self.s.history,
            HistoryEntry(time=rfc3339(self.now), revision=rev, action=action, message=message),
        ][-HISTORY_LIMIT:]
        self.events.append(Event(reason, message, "Warning" if warning else "Normal"))

    def wake(self, seconds: float) -> None:
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def enter_step(self, index: int) -> None:
        self.s.current_step = index
        self.s.step_started_at = rfc3339(self.now)
        self.s.progressed_at = rfc3339(self.now)
        if self.s.analysis:
            self.s.analysis = self.s.analysis.model_copy(update={"passes": 0})

    def promote(self, message: str, reason: str = Reason.PROMOTED) -> None:
        self.s.stable_revision = self.s.canary_revision
        self.s.canary_revision = None
        self.s.canary_weight = 0
        self.s.current_step = None
        self.s.step_started_at = None
        self.s.progressed_at = None
        self.s.phase = "Healthy"
        self.record("Promoted", message, reason)

    def rollback(self, message: str, reason: str = Reason.ROLLED_BACK) -> None:
        # canary_revision stays set with phase RolledBack, so the same revision is not retried
        # until the spec changes; the stable pods never stopped serving.
        self.s.canary_weight = 0
        self.s.phase = "RolledBack"
        self.record("RolledBack", message, reason, warning=True)


def advance(
    rollout: RolloutSpec,
    status: ModelDeploymentStatus,
    observed: Observed,
    now: datetime,
    analysis: AnalysisOutcome | None = None,
    experiment: AnalysisOutcome | None = None,
) -> Decision:
    """The next rollout state. ``analysis`` is the run reconcile made because :func:`analysis_due`;
    ``experiment`` the one over an A/B experiment's whole duration, because :func:`experiment_due`."""
    m = _Machine(rollout, status, now)
    m.experiment = experiment
    s = m.s
    desired = observed.desired_revision

    if s.stable_revision is None:  # first revision: nothing to compare with, it is the stable one
        s.stable_revision = desired
        s.phase = "Healthy"
        m.record("Created", f"revision {desired} is the first, serving as stable", Reason.NEW_REVISION)
        return Decision(s, m.events)

    if desired == s.stable_revision:
        if s.canary_revision is not None:  # spec went back to stable: drop the canary
            s.canary_revision, s.canary_weight, s.current_step = None, 0, None
            m.record("CanaryDropped", "spec matches the stable revision again", Reason.NEW_REVISION)
        if s.phase in ("Pending", "Progressing", "Paused", "RolledBack"):
            s.phase = "Healthy"
        return Decision(s, m.events, clear_annotations=_present(observed))

    if s.canary_revision != desired:  # a new revision (also replaces an unfinished canary)
        s.canary_revision = desired
        s.canary_weight = 0
        s.phase = "Progressing"
        s.analysis = AnalysisStatus()
        m.enter_step(0)
        m.record(
            "CanaryStarted", f"canary {desired} against stable {s.stable_revision}", Reason.CANARY_STARTED
        )

    if s.phase == "RolledBack":
        return Decision(s, m.events, clear_annotations=_present(observed))

    if observed.abort:
        m.rollback("aborted by the kubetune.io/abort annotation", Reason.ABORTED)
        m.clear.append(ABORT_ANNOTATION)
        return Decision(s, m.events, clear_annotations=m.clear)
    if observed.canary_failed:
        m.rollback(f"canary pods failed: {observed.canary_failed}", Reason.STARTUP_PROBE_FAILED)
        return Decision(s, m.events)
    if observed.promote == "full":
        m.promote("promoted by kubetune.io/promote=full", Reason.MANUAL_PROMOTE)
        m.clear.append(PROMOTE_ANNOTATION)
        return Decision(s, m.events, clear_annotations=m.clear)

    if analysis is not None and not _apply_analysis(m, analysis):
        return Decision(s, m.events, m.requeue, m.clear)

    skip = observed.promote is not None
    if skip:
        m.clear.append(PROMOTE_ANNOTATION)
    _run_steps(m, observed, skip)
    interval = parse_duration(rollout.analysis.interval)
    if s.canary_revision is not None and s.phase in ("Progressing", "Paused"):
        m.wake(interval)
        _check_stalled(m, status)
    return Decision(s, m.events, m.requeue, m.clear, m.stalled)


def _check_stalled(m: _Machine, before: ModelDeploymentStatus) -> None:
    """Roll back or hold a rollout that stopped making progress (``onStalled``)."""
    s = m.s
    spec = m.rollout
    why: tuple[str, str] | None = None
    limit = spec.analysis.max_inconclusive
    count = s.analysis.consecutive_inconclusive if s.analysis else 0
    if limit is not None and count >= limit:
        why = (
            Reason.TOO_MANY_INCONCLUSIVE,
            f"{count} analyses in a row were inconclusive or could not reach Prometheus "
            f"(spec.rollout.analysis.maxInconclusive is {limit})",
        )
    elif spec.progress_deadline is not None and s.phase == "Progressing":
        # a pause step waits on purpose; the clock starts again when the next step begins
        since = s.progressed_at or s.step_started_at
        if since is None:
            s.progressed_at = since = rfc3339(m.now)
        deadline = parse_duration(spec.progress_deadline)
        idle = (m.now - _parse(since)).total_seconds()
        if idle >= deadline:
            why = (
                Reason.PROGRESS_DEADLINE_EXCEEDED,
                f"no progress for {int(idle)}s at step {s.current_step}, weight {s.canary_weight}% "
                f"(spec.rollout.progressDeadline is {spec.progress_deadline})",
            )
        else:
            m.wake(deadline - idle)
    was = get_condition(before.conditions, ConditionType.ROLLOUT_STALLED)
    held = was is not None and was.status == "True"
    if why is None:
        if held:
            m.record("Resumed", "the rollout is making progress again", Reason.RESUMED)
        return
    reason, message = why
    if spec.on_stalled == "rollback":
        m.rollback(f"rollout stalled: {message}", reason)
        return
    m.stalled = (reason, f"holding at weight {s.canary_weight}% (onStalled is hold): {message}")
    if not held:
        m.record("Stalled", m.stalled[1], reason, warning=True)


def _present(observed: Observed) -> list[str]:
    out = []
    if observed.promote is not None:
        out.append(PROMOTE_ANNOTATION)
    if observed.abort:
        out.append(ABORT_ANNOTATION)
    return out


def _apply_analysis(m: _Machine, outcome: AnalysisOutcome) -> bool:
    """Fold one analysis into the status; False when it rolled the canary back."""
    s = m.s
    spec = m.rollout.analysis
    prev = s.analysis or AnalysisStatus()
    if not outcome.reachable:
        s.analysis = prev.model_copy(
            update={
                "time": rfc3339(m.now),
                "verdict": "Inconclusive",
                "metrics": [],
                "consecutive_inconclusive": prev.consecutive_inconclusive + 1,
            }
        )
        m.record(
            "Hold",
            f"Prometheus unreachable, holding: {outcome.message}",
            Reason.PROMETHEUS_UNREACHABLE,
            warning=True,
        )
        return True
    verdict = outcome.verdict
    if verdict == "Inconclusive" and spec.on_inconclusive == "promote":
        verdict = "Pass"
    failures = prev.failures + (verdict == "Fail")
    inconclusive = prev.inconclusive + (outcome.verdict == "Inconclusive")
    passes = prev.passes + 1 if verdict == "Pass" else 0
    s.analysis = AnalysisStatus(
        time=rfc3339(m.now),
        verdict=outcome.verdict,
        metrics=outcome.metrics,
        failures=failures,
        inconclusive=inconclusive,
        passes=passes,
        consecutive_inconclusive=prev.consecutive_inconclusive + 1 if verdict == "Inconclusive" else 0,
    )
    if verdict == "Pass":
        s.progressed_at = rfc3339(m.now)
    failed = [f"{v.name} ({v.message})" for v in outcome.metrics if v.verdict == "Fail"]
    if verdict == "Fail":
        if failures >= spec.failure_limit:
            m.rollback(
                f"analysis failed {failures}/{spec.failure_limit} times: {', '.join(failed)}",
                Reason.ANALYSIS_FAILED,
            )
            return False
        m.record(
            "AnalysisFailed",
            f"failure {failures}/{spec.failure_limit}: {', '.join(failed)}",
            Reason.ANALYSIS_FAILED,
            warning=True,
        )
    elif outcome.verdict == "Inconclusive":
        if spec.on_inconclusive == "rollback":
            m.rollback("analysis inconclusive and onInconclusive is rollback", Reason.ANALYSIS_INCONCLUSIVE)
            return False
        if spec.on_inconclusive == "hold":
            why = "; ".join(f"{v.name}: {v.message}" for v in outcome.metrics if v.verdict == "Inconclusive")
            m.record("Hold", f"analysis inconclusive, holding: {why}", Reason.ANALYSIS_INCONCLUSIVE)
    else:
        m.record("AnalysisPassed", "every check passed" + _evidence(outcome.metrics), Reason.ANALYSIS_PASSED)
    return True


def _evidence(metrics: list[MetricVerdict]) -> str:
    """``: name effect [low, high] p=...`` for the checks the statistical judge measured, else ''."""
    parts = [
        f"{v.name} {v.effect:.3g} [{v.effect_low:.3g}, {v.effect_high:.3g}] p={v.p_value:.2g}"
        for v in metrics
        if v.effect is not None
        and v.p_value is not None
        and v.effect_low is not None
        and v.effect_high is not None
    ]
    return f": {'; '.join(parts)}" if parts else ""


def _run_experiment(m: _Machine, step: ExperimentStep) -> bool:
    """Hold the split, then record the closing analysis; True when the rollout moves on.

    The closing analysis is reconcile's (:func:`experiment_due`); while Prometheus cannot answer
    it the result waits. Time in a running experiment counts as progress: its duration bounds it.
    """
    s = m.s
    assert s.current_step is not None and s.canary_revision is not None
    e = s.experiment
    if e is None or e.revision != s.canary_revision or e.step != s.current_step:
        e = s.experiment = ExperimentStatus(
            revision=s.canary_revision,
            step=s.current_step,
            weight=s.canary_weight,
            started_at=rfc3339(m.now),
        )
        m.record(
            "ExperimentStarted",
            f"holding canary weight {s.canary_weight}% for {step.duration}, then comparing canary with stable",
            Reason.EXPERIMENT_STARTED,
        )
    if e.verdict is None:
        s.phase = "Progressing"
        s.progressed_at = rfc3339(m.now)
        outcome = m.experiment
        if outcome is None or not outcome.reachable:
            left = parse_duration(step.duration) - (m.now - _parse(e.started_at)).total_seconds()
            m.wake(max(left, 1.0))
            return False
        e = s.experiment = e.model_copy(
            update={"ended_at": rfc3339(m.now), "verdict": outcome.verdict, "metrics": outcome.metrics}
        )
        m.record(
            "ExperimentDone",
            f"over {step.duration} at {e.weight}%: {outcome.message}{_evidence(outcome.metrics)}",
            Reason.EXPERIMENT_DONE,
            warning=outcome.verdict == "Fail",
        )
    if step.decision == "auto" and e.verdict == "Fail":
        s.experiment = e.model_copy(update={"decision": "rolled back by policy (decision: auto)"})
        m.rollback(f"experiment result Fail: {_failed(e.metrics)}", Reason.ANALYSIS_FAILED)
        return False
    if step.decision == "auto" and e.verdict == "Pass":
        s.experiment = e.model_copy(update={"decision": "moved on by policy (decision: auto)"})
        return True
    s.experiment = e.model_copy(
        update={"decision": "waiting for kubetune.io/promote (moves on) or kubetune.io/abort (rolls back)"}
    )
    s.phase = "Paused"
    return False


def _failed(metrics: list[MetricVerdict]) -> str:
    return ", ".join(f"{v.name} ({v.message})" for v in metrics if v.verdict == "Fail")


def _run_steps(m: _Machine, observed: Observed, skip: bool) -> None:
    s = m.s
    steps = m.rollout.steps
    while s.current_step is not None and s.current_step < len(steps):
        step = steps[s.current_step]
        if skip:
            skip = False
            if (
                step.experiment is not None
                and s.experiment is not None
                and s.experiment.step == s.current_step
            ):
                s.experiment = s.experiment.model_copy(update={"decision": "moved on by kubetune.io/promote"})
            m.record(
                "Skipped", f"step {s.current_step} skipped by kubetune.io/promote", Reason.MANUAL_PROMOTE
            )
            m.enter_step(s.current_step + 1)
            continue
        if step.set_weight is not None:
            if s.canary_weight != step.set_weight:
                s.canary_weight = step.set_weight
                m.record("SetWeight", f"canary weight {step.set_weight}%", Reason.WEIGHT_SET)
            if not observed.canary_ready or (
                observed.ready_weight is not None and observed.ready_weight < step.set_weight
            ):
                s.phase = "Progressing"
                m.wake(5)
                return
            m.enter_step(s.current_step + 1)
            continue
        if step.pause is not None:
            started = _parse(s.step_started_at) if s.step_started_at else m.now
            if step.pause.duration is None:
                s.phase = "Paused"
                return
            left = parse_duration(step.pause.duration) - (m.now - started).total_seconds()
            if left > 0:
                s.phase = "Paused"
                m.wake(left)
                return
            s.phase = "Progressing"
            m.enter_step(s.current_step + 1)
            continue
        if step.experiment is not None:
            if _run_experiment(m, step.experiment):
                m.enter_step(s.current_step + 1)
                continue
            return
        if step.analysis is not None:
            s.phase = "Progressing"
            passes = s.analysis.passes if s.analysis else 0
            if passes < step.analysis.intervals:
                return
            m.enter_step(s.current_step + 1)
            continue
    m.promote(f"all {len(steps)} steps passed")
