"""The FineTuneJob state machine: observed children in, desired status and actions out.

``decide()`` is level-based: it looks only at the FineTuneJob (spec and last status) and what
exists now (the preflight Job and its pod log, the training Job, its pods and their log), never
at which event woke it up. It returns the whole next status, the actions that bring the
children to the desired state, and one Event per condition transition. Pure: ``now`` is an
argument; no I/O (``reconcile`` does that).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, Literal

from kubetune.api.contract import exits, pricing
from kubetune.api.contract.result import RunResult
from kubetune.api.v1alpha1.adapter import DIGEST_REF_PATTERN
from kubetune.api.v1alpha1.base import Condition, get_condition, rfc3339, set_condition
from kubetune.api.v1alpha1.finetunejob import (
    AdapterRef,
    CheckpointRef,
    ConditionType,
    CostSummary,
    FineTuneJob,
    FineTuneJobStatus,
    Phase,
    QueueStatus,
    Reason,
)
from kubetune.controllers import readiness, refusals
from kubetune.controllers.finetunejob import builders, observe, queueing
from kubetune.controllers.settings import Settings

Obj = dict[str, Any]
Action = Literal[
    "create_children",  # spec ConfigMap, RBAC, preflight Job (and the workers Service)
    "create_training",  # the training Job
    "suspend_training",  # set the training Job's spec.suspend (checkpoint via SIGTERM, free GPUs)
    "resume_training",
    # Kueue owns spec.suspend of a queued training Job: a user suspend deactivates its Workload
    "deactivate_workload",
    "activate_workload",
    "stop_training",  # delete the training Job: a terminal outcome was recorded
    "stop_preflight",  # delete the preflight Job: the API server will never admit its pod
    "create_adapter",
]
TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed"})
WARNING_REASONS = frozenset(
    {
        Reason.PREFLIGHT_FAILED,
        Reason.INSUFFICIENT_GPU,
        Reason.TRAINING_FAILED,
        Reason.BACKOFF_LIMIT_EXCEEDED,
        Reason.DEADLINE_EXCEEDED,
        Reason.STALLED,
        Reason.GATE_NOT_MET,
        Reason.BUDGET_EXCEEDED,
        Reason.RETRYING,
        Reason.ADAPTER_NAME_TAKEN,
        Reason.NO_REGISTRY,
        Reason.NOT_REGISTERED,
        Reason.INVALID_SPEC,
        Reason.FOREIGN_CHILD,
        Reason.QUOTA_EXCEEDED,
        Reason.PODS_REFUSED,
        Reason.PODS_NOT_CREATED,
        "Unschedulable",
    }
)
_DIGEST_RE = __import__("re").compile(DIGEST_REF_PATTERN)
RESUMED_FROM = "resumed from checkpoint at step"
RESUMING = "resumed; "  # until the trainer reports the checkpoint it loaded


@dataclasses.dataclass
class Observed:
    """The children as they are now."""

    preflight_job: Obj | None = None
    preflight_pods: list[Obj] = dataclasses.field(default_factory=list)
    preflight_log: observe.TrainerLog | None = None
    training_job: Obj | None = None
    training_pods: list[Obj] = dataclasses.field(default_factory=list)
    training_log: observe.TrainerLog | None = None
    # the Adapter named after the job, read before training starts and when it ends
    adapter: Obj | None = None
    # A child's name taken by an object the job does not own ("ConfigMap ml/ft-spec"): nothing
    # of it is read (the Job fields above are None), and the job ends.
    foreign: str | None = None
    # What the API server said when it refused a child built from the spec (HTTP 422).
    refused: str | None = None
    # Why the API server refuses the pods of the preflight or training Job (the Job
    # controller's newest FailedCreate Event), read only while the Job lacks pods.
    preflight_pods_refused: str | None = None
    training_pods_refused: str | None = None
    # Kueue's Workload for a training Job that has a queue label (None: none yet, or no Kueue)
    workload: Obj | None = None
    # the ClusterQueue its LocalQueue points at, read while the Workload has no admission
    local_cluster_queue: str | None = None


@dataclasses.dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclasses.dataclass
class Decision:
    status: FineTuneJobStatus
    actions: list[Action]
    events: list[Event]
    adapter_ref: str | None = None  # digest-pinned ref to register when create_adapter


def is_terminal(status: FineTuneJobStatus | None) -> bool:
    return status is not None and status.phase in TERMINAL


class _Builder:
    """Accumulates the next status; remembers condition transitions for events."""

    def __init__(self, job: FineTuneJob, now: datetime) -> None:
        self.job = job
        self.now = now
        self.status = (job.status or FineTuneJobStatus()).model_copy(deep=True)
        self.generation = job.metadata.generation

    def cond(self, type: str, status: Literal["True", "False", "Unknown"], reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type, status, reason, message, now=self.now, generation=self.generation
        )

    def phase(self, phase: Phase) -> None:
        self.status.phase = phase

    def finish(self, phase: Phase, type: str, reason: str, message: str) -> None:
        self.phase(phase)
        self.cond(type, "True", reason, message)
        if self.status.completion_time is None:
            self.status.completion_time = rfc3339(self.now)


def _events(old: list[Condition], new: list[Condition], old_phase: str, new_phase: str) -> list[Event]:
    out: list[Event] = []
    for cond in new:
        if cond.type in readiness.SUMMARY_TYPES:
            continue  # a summary of the others, which have their own events
        before = get_condition(old, cond.type)
        if before is not None and (before.status, before.reason) == (cond.status, cond.reason):
            continue
        if before is None and cond.status == "False" and cond.reason in ("", Reason.RESUMED):
            continue
        kind: Literal["Normal", "Warning"] = "Warning" if cond.reason in WARNING_REASONS else "Normal"
        text = f"{cond.type}={cond.status}: {cond.message}" if cond.message else f"{cond.type}={cond.status}"
        out.append(Event(kind, cond.reason, text))
    if old_phase != new_phase:
        kind = "Warning" if new_phase == "Failed" else "Normal"
        out.append(Event(kind, f"Phase{new_phase}", f"phase {old_phase} -> {new_phase}"))
    return out


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _merge_checkpoints(
    old: list[CheckpointRef], new: list[CheckpointRef], now: datetime, keep: int
) -> list[CheckpointRef]:
    """The newest ``keep`` checkpoints seen: the ones the trainer has not pruned from disk."""
    by_step = {c.step: c for c in old}
    for c in new:
        if c.step not in by_step:
            by_step[c.step] = CheckpointRef(step=c.step, path=c.path, time=c.time or rfc3339(now))
    return [by_step[k] for k in sorted(by_step)][-max(1, keep) :]


def _cost(b: _Builder, pods: list[Obj]) -> None:
    res = b.job.spec.resources
    gpus = res.gpus_per_node * res.num_nodes
    if not gpus:
        if b.status.cost is None and b.status.start_time:
            b.status.cost = CostSummary(currency=pricing.currency(b.job.spec.budget))
        return
    seconds = 0.0
    for pod in pods:
        started = _parse_time((pod.get("status") or {}).get("startTime"))
        if started is None:
            continue
        end = b.now
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            finished = _parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            if finished is not None:
                end = finished
        seconds += max(0.0, (end - started).total_seconds()) * res.gpus_per_node
    hours = seconds / 3600.0
    old = b.status.cost
    if old is not None and old.gpu_hours > hours:  # pods of earlier attempts are gone
        hours = old.gpu_hours
    budget = b.job.spec.budget
    b.status.cost = CostSummary(
        gpu_hours=round(hours, 6),
        amount=round(pricing.cost(hours, res.gpu_product, budget), 4),
        currency=pricing.currency(budget),
    )


def _apply_log(b: _Builder, log: observe.TrainerLog | None, keep_checkpoints: int) -> None:
    if log is None:
        return
    current = b.status.progress
    if log.progress is not None and (current is None or log.progress.step >= current.step):
        progress = log.progress.model_copy()
        progress.loss_history, progress.loss_history_step = observe.loss_history(current, log.losses)
        progress.update_time = (
            current.update_time
            if current is not None and current.step == progress.step and current.update_time
            else rfc3339(b.now)
        )
        b.status.progress = progress
    b.status.checkpoints = _merge_checkpoints(b.status.checkpoints, log.checkpoints, b.now, keep_checkpoints)
    if log.result is not None and log.result.metrics:
        b.status.metrics = [m.model_copy() for m in log.result.metrics]


def _pushed_ref(result: RunResult | None) -> str | None:
    """The digest-pinned reference the trainer pushed, if it reports one."""
    ref = result.pushed.ref if result is not None and result.pushed is not None else None
    return ref if ref is not None and _DIGEST_RE.match(ref) else None


def decide(job: FineTuneJob, seen: Observed, settings: Settings, now: datetime) -> Decision:
    """The next status of ``job`` and the actions that move its children towards it."""
    b = _Builder(job, now)
    old_conditions = list(b.status.conditions)
    old_phase = b.status.phase if job.status is not None else ""
    actions: list[Action] = []
    adapter_ref: str | None = None
    if is_terminal(job.status):
        outcome, _, _ = observe.job_outcome(seen.training_job)
        if job.status is not None and job.status.phase == "Failed" and outcome == "active":
            actions.append("stop_training")
    elif seen.foreign is not None:
        why = (
            f"{seen.foreign} exists and is not owned by this FineTuneJob, so nothing of it is used; "
            "delete or rename it, then delete and re-create the FineTuneJob"
        )
        b.finish("Failed", ConditionType.FAILED, Reason.FOREIGN_CHILD, why)
    elif seen.refused is not None:
        b.finish("Failed", ConditionType.FAILED, Reason.INVALID_SPEC, seen.refused)
    else:
        adapter_ref = _progress_job(b, seen, settings, actions)
    b.status.observed_generation = job.metadata.generation
    b.status.conditions = readiness.finetunejob_conditions(b.status, now=now, generation=b.generation)
    events = _events(old_conditions, b.status.conditions, old_phase, b.status.phase)
    return Decision(status=b.status, actions=actions, events=events, adapter_ref=adapter_ref)


def _registry_problem(job: FineTuneJob, settings: Settings) -> str | None:
    """Why a job could not end with a pullable Adapter, before anything runs; None if it can."""
    if job.spec.dry_run:
        return None
    target = settings.registry_target(
        job.spec.output.repository, job.metadata.namespace, job.metadata.name or ""
    )
    if target is None:
        return (
            "no registry to push the adapter to: set spec.output.repository to oci://HOST/PATH, "
            "or ask the platform team to set the operator's registry (chart value registry.default)"
        )
    if not target.startswith("oci://"):
        return (
            f"spec.output.repository is {target!r}, a local path: in a cluster the adapter must go "
            "to a remote registry (a path inside the pod disappears with it); write oci://HOST/PATH"
        )
    return None


def foreign_adapter(job: FineTuneJob, adapter: Obj | None) -> str | None:
    """Why the Adapter named after ``job`` belongs to another job (a deleted one of the same
    name); None when there is none or it is this job's own (written by an earlier pass)."""
    if adapter is None:
        return None
    spec = adapter.get("spec") or {}
    source = spec.get("sourceJob") or {}
    uid = source.get("uid")
    if uid and uid == job.metadata.uid:
        return None
    name = job.metadata.name
    ns = job.metadata.namespace or "default"
    made_by = f"FineTuneJob {source.get('name', '?')} (uid {uid})" if uid else "another FineTuneJob"
    return (
        f"Adapter {name} already exists, registered by {made_by} with {spec.get('ref', '?')}; "
        f"Adapters are immutable, so this job's result could not be registered under that name: "
        f"give this FineTuneJob a new name, or delete the old Adapter if nothing serves it "
        f"(kubectl delete adapter {name} -n {ns})"
    )


def refuse_registration(job: FineTuneJob, decision: Decision, reason: str, why: str, now: datetime) -> None:
    """Turn a Succeeded decision into Failed when registering the Adapter failed after all: its
    name was taken within this pass (``AdapterNameTaken``) or the result cannot make one
    (``NotRegistered``). The pushed digest stays in the message, so nothing is lost."""
    b = _Builder(job, now)
    old_conditions, old_phase = list(b.status.conditions), b.status.phase if job.status else ""
    b.status = decision.status
    ref = b.status.adapter.ref if b.status.adapter is not None else decision.adapter_ref
    b.status.adapter = None
    b.status.phase = "Failed"
    b.status.conditions = [c for c in b.status.conditions if c.type != ConditionType.SUCCEEDED]
    b.cond(ConditionType.FAILED, "True", reason, f"trained and pushed {ref}, but it is not registered: {why}")
    b.status.conditions = readiness.finetunejob_conditions(b.status, now=now, generation=b.generation)
    decision.events[:] = _events(old_conditions, b.status.conditions, old_phase, b.status.phase)


def _progress_job(b: _Builder, seen: Observed, settings: Settings, actions: list[Action]) -> str | None:
    spec = b.job.spec
    n_pre = builders.names(b.job)["preflight"]
    if seen.preflight_job is None and b.status.preflight is None:
        problem = _registry_problem(b.job, settings)
        if problem is not None:
            b.finish("Failed", ConditionType.FAILED, Reason.NO_REGISTRY, problem)
            return None
    if seen.preflight_log is not None and seen.preflight_log.preflight is not None:
        b.status.preflight = seen.preflight_log.preflight
    outcome, reason, message = observe.job_outcome(seen.preflight_job)
    if outcome in ("missing", "active", "suspended"):
        if outcome == "missing":
            actions.append("create_children")
        b.phase("Validating")
        b.cond(
            ConditionType.PREFLIGHT_PASSED,
            "Unknown",
            Reason.PREFLIGHT_RUNNING,
            f"preflight Job {n_pre} checks the dataset, template, method and budget on CPU",
        )
        if outcome == "active":
            _pods_refused(b, seen.preflight_pods_refused, "preflight", actions)
        return None
    if outcome == "failed":
        ended = observe.exits(seen.preflight_pods, "preflight")
        why = next((observe.first_line(e.message) for e in reversed(ended) if e.message), "")
        summary = b.status.preflight
        if summary is not None and summary.errors and not why:
            why = summary.errors[0]
        why = why or message or reason or "preflight failed"
        kind = Reason.BUDGET_EXCEEDED if "budget" in why.lower() else Reason.PREFLIGHT_FAILED
        b.cond(ConditionType.PREFLIGHT_PASSED, "False", kind, why)
        b.finish("Failed", ConditionType.FAILED, kind, why)
        return None
    summary = b.status.preflight
    passed_msg = (
        f"{summary.train_rows} training rows, {summary.tokens} tokens, ~{summary.estimated_steps} steps"
        if summary is not None
        else "preflight passed"
    )
    b.cond(ConditionType.PREFLIGHT_PASSED, "True", Reason.PREFLIGHT_PASSED, passed_msg)
    if spec.dry_run:
        b.finish("Succeeded", ConditionType.SUCCEEDED, Reason.DRY_RUN_COMPLETE, f"dry run: {passed_msg}")
        return None
    return _training(b, seen, settings, actions)


def _exit_text(b: _Builder, ex: observe.Exit, fallback: str = "") -> str:
    """What a trainer exit said; naming the pod when a multi-node job has several."""
    text = observe.first_line(ex.message) or fallback
    if b.job.spec.resources.num_nodes <= 1:
        return text
    head = f"pod {ex.pod} exited {ex.exit_code}"
    return f"{head}: {text}" if text else head


def _training(b: _Builder, seen: Observed, settings: Settings, actions: list[Action]) -> str | None:
    spec = b.job.spec
    st = b.status
    n_train = builders.names(b.job)["train"]
    outcome, reason, message = observe.job_outcome(seen.training_job)
    pods = seen.training_pods
    log = seen.training_log
    _apply_log(b, log, settings.keep_checkpoints)
    _cost(b, pods)
    ended = observe.exits(pods, "trainer")
    if outcome == "missing":
        taken = foreign_adapter(b.job, seen.adapter)
        if taken is not None:
            b.finish("Failed", ConditionType.FAILED, Reason.ADAPTER_NAME_TAKEN, taken)
            return None
        if spec.suspend:
            b.phase("Suspended")
            b.cond(ConditionType.SUSPENDED, "True", Reason.SUSPENDED, "suspended before training started")
            return None
        suspended = get_condition(st.conditions, ConditionType.SUSPENDED)
        if suspended is not None and suspended.status == "True":
            b.cond(ConditionType.SUSPENDED, "False", Reason.RESUMED, "resumed before training started")
        actions.append("create_training")
        st.attempts = max(st.attempts, 1)
        st.start_time = st.start_time or rfc3339(b.now)
        b.phase("Pending")
        b.cond(ConditionType.TRAINING, "Unknown", Reason.TRAINING_STARTED, f"training Job {n_train} created")
        return None
    # Attempts: pods the Job created plus container restarts inside them. The Job counts a
    # deleted pod as failed while it is still terminating, so only live pods are added to it.
    failed_pods = int(((seen.training_job or {}).get("status") or {}).get("failed", 0))
    live = [p for p in pods if not observe.finished_or_terminating(p)]
    st.attempts = max(st.attempts, len(live) + observe.restarts(pods, "trainer") + failed_pods, 1)
    st.start_time = st.start_time or rfc3339(b.now)
    resumed = observe.resumed_from(log)
    # Suspension: the Job controller deletes the pods (SIGTERM -> the trainer checkpoints).
    suspended_job = bool(((seen.training_job or {}).get("spec") or {}).get("suspend"))
    queue = queueing.job_queue(seen.training_job)
    if queue is not None:
        if outcome not in ("complete", "failed") and _kueue(b, seen, queue, suspended_job, actions):
            return None
    elif outcome not in ("complete", "failed"):
        if spec.suspend:
            if not suspended_job:
                actions.append("suspend_training")
            b.phase("Suspended")
            b.cond(ConditionType.SUSPENDED, "True", Reason.SUSPENDED, _suspended_message(b, pods))
            step = st.progress.step if st.progress is not None else 0
            b.cond(ConditionType.TRAINING, "False", Reason.SUSPENDED, f"suspended at step {step}")
            return None
        if suspended_job:
            actions.append("resume_training")
    if not spec.suspend:
        _note_resume(b, resumed)
    # Terminal answers from the trainer's exit codes (restartPolicy OnFailure would retry them).
    for ex in ended:
        if ex.exit_code == exits.GATE_NOT_MET:
            why = observe.first_line(ex.message) or "the evaluation gate was not met"
            b.cond(
                ConditionType.GATE_PASSED,
                "False",
                Reason.GATE_NOT_MET,
                f"{why}; the adapter is not registered",
            )
            b.finish("Failed", ConditionType.FAILED, Reason.GATE_NOT_MET, why)
            actions.append("stop_training")
            return None
        if ex.exit_code == exits.USER_ERROR:
            why = _exit_text(b, ex, "the trainer reported a problem with the data or spec")
            b.cond(ConditionType.TRAINING, "False", Reason.TRAINING_FAILED, why)
            b.finish("Failed", ConditionType.FAILED, Reason.TRAINING_FAILED, why)
            actions.append("stop_training")
            return None
    if outcome == "failed":
        failed = [e for e in ended if e.exit_code != 0]
        last_exit = max(failed, key=lambda e: e.finished_at or "") if failed else None
        detail = _exit_text(b, last_exit) if last_exit else ""
        if reason == "DeadlineExceeded":
            why = f"spec.activeDeadlineSeconds ({spec.active_deadline_seconds}s) exceeded"
            b.cond(ConditionType.TRAINING, "False", Reason.DEADLINE_EXCEEDED, why)
            b.finish("Failed", ConditionType.FAILED, Reason.DEADLINE_EXCEEDED, why)
        else:
            why = f"training failed after {st.attempts} attempts (backoffLimit {spec.backoff_limit})" + (
                f": {detail}" if detail else (f": {message}" if message else "")
            )
            b.cond(ConditionType.TRAINING, "False", Reason.BACKOFF_LIMIT_EXCEEDED, why)
            b.finish("Failed", ConditionType.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED, why)
        return None
    if outcome == "complete":
        result = log.result if log is not None else None
        gate_msg = (
            result.gate.message if result is not None and result.gate else ""
        ) or "evaluation gate passed"
        b.cond(ConditionType.GATE_PASSED, "True", Reason.GATE_PASSED, gate_msg)
        finished = "training finished" + (f" in {st.attempts} attempts" if st.attempts > 1 else "")
        if resumed is not None:
            finished += f"; the last attempt resumed from checkpoint at step {resumed}"
        b.cond(ConditionType.TRAINING, "False", Reason.SUCCEEDED, finished)
        if st.progress is not None and st.progress.total_steps:
            st.progress.eta_seconds = 0.0
        ref = _pushed_ref(result)
        taken = foreign_adapter(b.job, seen.adapter) if ref is not None else None
        if taken is not None:
            # an Adapter of that name appeared while this job trained; the artifact stays pushed
            why = f"trained and pushed {ref}, but it is not registered: {taken}"
            b.finish("Failed", ConditionType.FAILED, Reason.ADAPTER_NAME_TAKEN, why)
            return None
        if ref is None:
            # never Succeeded without a pullable Adapter (e.g. a custom image that did not push)
            why = (
                f"training Job {n_train} completed, but the trainer reported no pushed digest, so "
                f"nothing was registered; read the trainer's log (kubectl logs job/{n_train})"
            )
            b.finish("Failed", ConditionType.FAILED, Reason.NOT_REGISTERED, why)
            return None
        st.adapter = AdapterRef(name=b.job.metadata.name, ref=ref)
        actions.append("create_adapter")
        b.finish(
            "Succeeded",
            ConditionType.SUCCEEDED,
            Reason.ADAPTER_REGISTERED,
            f"registered Adapter {b.job.metadata.name} ({ref})",
        )
        return ref
    # Active: the pods admitted, scheduled, then the trainer's own phase.
    if seen.training_pods_refused is not None and not observe.running(pods, "trainer"):
        b.phase("Pending")
        _pods_refused(b, seen.training_pods_refused, "training", actions)
        return None
    pending = observe.unschedulable(pods)
    if pending is not None and not observe.running(pods, "trainer"):
        gpu = "nvidia.com/gpu" in pending
        why = f"no node has {spec.resources.gpus_per_node} free nvidia.com/gpu: {pending}" if gpu else pending
        b.cond(ConditionType.SCHEDULED, "False", Reason.INSUFFICIENT_GPU if gpu else "Unschedulable", why)
        b.phase("Pending")
        return None
    if pods and any((p.get("spec") or {}).get("nodeName") for p in pods):
        nodes = sorted(
            {
                str((p.get("spec") or {}).get("nodeName"))
                for p in pods
                if (p.get("spec") or {}).get("nodeName")
            }
        )
        b.cond(ConditionType.SCHEDULED, "True", Reason.SCHEDULED, f"on {', '.join(nodes)}")
    if not observe.running(pods, "trainer"):
        b.phase("Pending" if st.phase in ("Pending", "Validating", "Suspended") else st.phase)
        return None
    phase_map: dict[str, Phase] = {"evaluating": "Evaluating", "exporting": "Exporting"}
    trainer_phase = log.phase if log is not None else None
    started_training = st.progress is not None and st.progress.step > 0
    phase: Phase = phase_map[trainer_phase] if trainer_phase in phase_map and started_training else "Training"
    b.phase(phase)
    _running_condition(b, resumed)
    _stall(b)
    return None


def _kueue(b: _Builder, seen: Observed, queue: str, suspended_job: bool, actions: list[Action]) -> bool:
    """A training Job in a Kueue queue: Kueue alone suspends and unsuspends it. True when the
    job waits (Queued or Suspended); False once admitted, for the usual running checks."""
    st = b.status
    wl = queueing.read(seen.workload)
    old = st.queue
    cluster_queue = (
        wl.cluster_queue or seen.local_cluster_queue or (old.cluster_queue if old is not None else None)
    )
    evictions = max(wl.evictions, old.evictions if old is not None else 0)
    if wl.evicted and old is not None and old.admitted:
        evictions = max(evictions, old.evictions + 1)
    running = not suspended_job
    st.queue = QueueStatus(
        local_queue=queue,
        cluster_queue=cluster_queue,
        workload=wl.workload,
        admitted=running and wl.admitted,
        reason=wl.reason or None,
        message=wl.message or None,
        evictions=evictions,
    )
    step = st.progress.step if st.progress is not None else 0
    where = f"LocalQueue {queue}" + (f" (ClusterQueue {cluster_queue})" if cluster_queue else "")
    if b.job.spec.suspend:
        if wl.workload is not None and wl.active:
            actions.append("deactivate_workload")
        b.phase("Suspended")
        b.cond(ConditionType.SUSPENDED, "True", Reason.SUSPENDED, _suspended_message(b, seen.training_pods))
        if st.progress is not None:
            b.cond(ConditionType.TRAINING, "False", Reason.SUSPENDED, f"suspended at step {step}")
        return True
    if wl.workload is not None and not wl.active:
        held = get_condition(st.conditions, ConditionType.SUSPENDED)
        if held is not None and held.status == "True":
            actions.append("activate_workload")  # the user's suspend deactivated it: undo that
    _note_resume(b, None)  # Suspended=False once the user resumes; the step comes once it runs
    if running or (wl.admitted and not wl.evicted):
        queued = get_condition(st.conditions, ConditionType.QUEUED)
        if queued is None or queued.status != "False" or queued.reason != Reason.ADMITTED:
            b.cond(ConditionType.QUEUED, "False", Reason.ADMITTED, f"admitted by Kueue to {where}")
        if running:
            return False
        b.phase("Pending")  # admitted; Kueue unsuspends the Job next
        return True
    if wl.workload is None:
        why = (
            f"waiting for Kueue to create a Workload for the training Job in {where}; if this "
            f"lasts, check that Kueue runs and that LocalQueue {queue} exists in namespace "
            f"{b.job.metadata.namespace}"
        )
    else:
        why = f"waiting in {where}" + (f": {wl.reason}: {wl.message}" if wl.message else "")
    evicted = evictions > 0 and (wl.evicted or st.progress is not None)
    b.phase("Queued")
    b.cond(ConditionType.QUEUED, "True", Reason.EVICTED if evicted else Reason.QUEUED, why)
    if evicted and st.progress is not None:
        b.cond(
            ConditionType.TRAINING,
            "False",
            Reason.EVICTED,
            f"evicted by Kueue at step {step} ({wl.reason or 'Evicted'}); resumes from the last "
            "complete checkpoint when admitted again",
        )
    return True


def _advice_fields(job: FineTuneJob, which: Literal["preflight", "training"]) -> dict[str, str]:
    """The spec field or chart value that sets each amount of the ``which`` pods."""
    if which == "preflight":
        return {
            r: f"the preflight's {r} (chart value resourceDefaults.preflight.{r})" for r in ("cpu", "memory")
        }
    res = job.spec.resources
    return refusals.spec_fields(res.cpu, res.memory, "trainer", "spec.resources.gpusPerNode")


def _pods_refused(
    b: _Builder, text: str | None, which: Literal["preflight", "training"], actions: list[Action]
) -> None:
    """Scheduled=False while the API server refuses the ``which`` pods; Failed when waiting
    cannot help (a quota whose hard limit is below the job's need, a LimitRange, Pod Security).
    Once the pods are admitted, a refusal written earlier gives way to PodsCreated."""
    current = get_condition(b.status.conditions, ConditionType.SCHEDULED)
    if text is None:
        waiting = (Reason.QUOTA_EXCEEDED, Reason.PODS_NOT_CREATED)
        if current is not None and current.status == "False" and current.reason in waiting:
            b.cond(ConditionType.SCHEDULED, "Unknown", Reason.PODS_CREATED, f"the {which} pods were admitted")
        return
    count = b.job.spec.resources.num_nodes if which == "training" else 1
    refusal = refusals.read(
        text,
        pods=f"the {which} pod" + ("s" if count > 1 else ""),
        count=count,
        namespace=b.job.metadata.namespace or "default",
        fields=_advice_fields(b.job, which),
    )
    b.cond(ConditionType.SCHEDULED, "False", refusal.kind, refusal.message)
    if refusal.permanent:
        b.finish("Failed", ConditionType.FAILED, refusal.kind, refusal.message)
        actions.append("stop_preflight" if which == "preflight" else "stop_training")


def _running_condition(b: _Builder, resumed: int | None) -> None:
    """Training=True: a retry (attempt > 1) or a run resumed after a suspension says from which
    checkpoint step. The step stays in the condition when the log tail no longer shows it."""
    attempt = b.status.attempts
    current = get_condition(b.status.conditions, ConditionType.TRAINING)
    if attempt > 1:
        prefix = f"attempt {attempt}"
        if resumed is not None:
            b.cond(ConditionType.TRAINING, "True", Reason.RETRYING, f"{prefix} {RESUMED_FROM} {resumed}")
        elif not (current is not None and current.status == "True" and current.message.startswith(prefix)):
            b.cond(ConditionType.TRAINING, "True", Reason.RETRYING, prefix)
    elif resumed is not None:
        b.cond(ConditionType.TRAINING, "True", Reason.RESUMED, f"{RESUMED_FROM} {resumed}")
    elif not (current is not None and current.status == "True" and current.reason == Reason.RESUMED):
        b.cond(ConditionType.TRAINING, "True", Reason.PROGRESSING, "the trainer is running")


def _suspended_message(b: _Builder, pods: list[Obj]) -> str:
    """Where a suspended job stands: still checkpointing, or GPUs freed and what resumes."""
    if any(not observe.finished_or_terminating(p) or observe.running([p], "trainer") for p in pods):
        return "checkpointing: the trainer pod is stopped with SIGTERM and frees its GPUs when it exits"
    claim = b.job.spec.checkpoint_storage.claim_name
    last = b.status.checkpoints[-1].step if b.status.checkpoints else None
    if not claim:
        return (
            "GPUs freed; the checkpoints were on an emptyDir and went with the pod, so unsuspending "
            "restarts training from step 0 (set spec.checkpointStorage.claimName to keep them)"
        )
    seen = f" (the latest seen: step {last})" if last is not None else ""
    return f"GPUs freed; unsuspending resumes from the last complete checkpoint on PVC {claim}{seen}"


def _note_resume(b: _Builder, resumed: int | None) -> None:
    """After a suspension: Suspended=False/Resumed, with the checkpoint step once the trainer
    reports it (until then a placeholder message that a later pass replaces)."""
    cond = get_condition(b.status.conditions, ConditionType.SUSPENDED)
    if cond is None or (cond.status == "False" and not cond.message.startswith(RESUMING)):
        return
    if resumed is not None:
        message = f"{RESUMED_FROM} {resumed}"
    elif b.job.spec.checkpoint_storage.claim_name:
        message = RESUMING + "the trainer restarts from the last complete checkpoint"
    else:
        message = RESUMING + "training restarts from step 0 (the checkpoints were on an emptyDir)"
    b.cond(ConditionType.SUSPENDED, "False", Reason.RESUMED, message)


def _stall(b: _Builder) -> None:
    limit = b.job.spec.stall_timeout_seconds
    progress = b.status.progress
    since = _parse_time(progress.update_time if progress is not None else None) or _parse_time(
        b.status.start_time
    )
    # Time spent suspended or queued in Kueue is not a stall: count from the resume or the
    # (re-)admission when it came later.
    for held in (ConditionType.SUSPENDED, ConditionType.QUEUED):
        resumed = get_condition(b.status.conditions, held)
        if resumed is not None and resumed.status == "False" and since is not None:
            since = max(since, _parse_time(resumed.last_transition_time) or since)
    if since is None or b.status.phase != "Training":
        return
    idle = (b.now - since).total_seconds()
    if idle > limit:
        b.cond(
            ConditionType.TRAINING_STALLED,
            "True",
            Reason.STALLED,
            f"no training step reported for {idle:.0f}s (limit {limit}s)",
        )
    elif get_condition(b.status.conditions, ConditionType.TRAINING_STALLED) is not None:
        b.cond(ConditionType.TRAINING_STALLED, "False", Reason.PROGRESSING, "steps are being reported")
