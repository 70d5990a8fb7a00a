"""The kstatus summary of each kind: ``Ready``, ``Reconciling`` and ``Stalled`` from its status.

GitOps tools wait on these (Flux through cli-utils' kstatus, kpt, Argo CD through the chart's
Lua health scripts in ``charts/kubetune/argocd/``). Their meaning is fixed by kstatus:
``Reconciling=True`` while the operator is still working towards the spec, ``Stalled=True``
only for a state that will not resolve without a change to the spec (kstatus reads it as
"failed for good"), ``Ready=True`` once the object has reached its goal. ``Reconciling`` and
``Stalled`` are abnormal-true, so they are removed rather than written False; ``Ready`` is
always there once the operator has seen the object. kstatus reads the first of ``Reconciling``
and ``Stalled`` that is True, so never both are.

Each function takes the status the controller is about to write and returns its conditions
with the summary set; it reads nothing else and decides nothing about the object itself (the
phase and the detailed conditions stay the controllers' decisions). Pure: ``now`` is an
argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from kubetune.api.v1alpha1 import adapter as adp
from kubetune.api.v1alpha1 import finetunejob as ftj
from kubetune.api.v1alpha1 import modeldeployment as mdp
from kubetune.api.v1alpha1.base import Condition, get_condition, rfc3339, set_condition

# the same three type names on all kinds
READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
SUMMARY_TYPES = frozenset({READY, RECONCILING, STALLED})


@dataclass(frozen=True)
class Summary:
    """What one object's summary says: Ready's status, and why (also Reconciling's or Stalled's)."""

    ready: Literal["True", "False"]
    reason: str
    message: str
    state: Literal["ready", "reconciling", "stalled", "waiting"]


def apply(
    conditions: list[Condition], summary: Summary, *, now: datetime, generation: int | None
) -> list[Condition]:
    """``conditions`` with Ready set from ``summary``, and Reconciling or Stalled present only
    when the summary says so."""
    out = set_condition(
        conditions, READY, summary.ready, summary.reason, summary.message, now=now, generation=generation
    )
    for type, wanted in ((RECONCILING, "reconciling"), (STALLED, "stalled")):
        if summary.state == wanted:
            out = set_condition(
                out, type, "True", summary.reason, summary.message, now=now, generation=generation
            )
        else:
            out = [c for c in out if c.type != type]
    return out


# --- FineTuneJob ---------------------------------------------------------------------------


def finetunejob(status: ftj.FineTuneJobStatus) -> Summary:
    """Ready once trained and registered (or a dry run passed); Stalled when it failed (a
    finished job never trains again: a new name, or delete and re-create, runs it again);
    waiting while suspended; Reconciling otherwise."""
    conds = status.conditions
    if status.phase == "Succeeded":
        done = get_condition(conds, ftj.ConditionType.SUCCEEDED)
        reason = done.reason if done is not None else ftj.Reason.SUCCEEDED
        message = (done.message if done is not None else "succeeded") + _changed_since(done, status)
        return Summary("True", reason, message, "ready")
    if status.phase == "Failed":
        failed = get_condition(conds, ftj.ConditionType.FAILED)
        reason = failed.reason if failed is not None else "Failed"
        why = (failed.message if failed is not None else "failed") + _changed_since(failed, status)
        return Summary(
            "False",
            reason,
            f"{why} (a finished FineTuneJob does not run again: to retry, give it a new name, "
            "or delete and re-create it)",
            "stalled",
        )
    if status.phase == "Suspended":
        held = get_condition(conds, ftj.ConditionType.SUSPENDED)
        message = held.message if held is not None else "suspended"
        return Summary(
            "False", ftj.Reason.SUSPENDED, f"{message}; set spec.suspend: false to go on", "waiting"
        )
    return Summary("False", status.phase, _ftj_detail(status), "reconciling")


def _changed_since(outcome: Condition | None, status: ftj.FineTuneJobStatus) -> str:
    """A note when the spec changed after the job finished: the outcome is the earlier spec's."""
    then, now = (outcome.observed_generation if outcome else None), status.observed_generation
    if then is None or now is None or then >= now:
        return ""
    return (
        f"; it finished at generation {then}, and spec changes since then do not train again "
        "(give the FineTuneJob a new name to train with them)"
    )


def _ftj_detail(status: ftj.FineTuneJobStatus) -> str:
    """One line on where a running job stands, from its most telling condition."""
    conds = status.conditions
    stalled = get_condition(conds, ftj.ConditionType.TRAINING_STALLED)
    if stalled is not None and stalled.status == "True":
        return f"training: {stalled.message}"
    if status.phase in ("Training", "Evaluating", "Exporting") and status.progress is not None:
        summary = status.progress.summary or f"step {status.progress.step}"
        return f"{status.phase.lower()}: {summary}"
    queued = get_condition(conds, ftj.ConditionType.QUEUED)
    if status.phase == "Queued" and queued is not None and queued.status == "True":
        return queued.message
    for type in (ftj.ConditionType.SCHEDULED, ftj.ConditionType.TRAINING, ftj.ConditionType.PREFLIGHT_PASSED):
        cond = get_condition(conds, type)
        if cond is not None and cond.status != "True" and cond.message:
            return cond.message
    return status.phase.lower()


def finetunejob_conditions(
    status: ftj.FineTuneJobStatus, *, now: datetime, generation: int | None
) -> list[Condition]:
    return apply(status.conditions, finetunejob(status), now=now, generation=generation)


# --- ModelDeployment -----------------------------------------------------------------------


def modeldeployment(status: mdp.ModelDeploymentStatus, desired: str | None) -> Summary:
    """Ready when ``desired`` (the revision the spec asks for; None when it is not known this
    pass) is the stable revision, serving with no canary; Stalled when the canary of this spec
    was rolled back or the spec is refused; waiting when the stable pods were lost or a
    rollout is held (``RolloutStalled``); Reconciling otherwise."""
    conds = status.conditions
    progressing = get_condition(conds, mdp.ConditionType.PROGRESSING)
    held = get_condition(conds, mdp.ConditionType.ROLLOUT_STALLED)
    why = progressing.message if progressing is not None else ""
    if status.phase == "Failed":
        return Summary("False", progressing.reason if progressing else "Failed", why or "failed", "stalled")
    if progressing is not None and progressing.status == "False":
        if progressing.reason == mdp.Reason.FOREIGN_CHILD:
            return Summary("False", progressing.reason, why, "stalled")
        if progressing.reason == mdp.Reason.ADAPTER_NOT_FOUND:
            return Summary("False", progressing.reason, f"waiting for an Adapter: {why}", "reconciling")
    if status.phase == "RolledBack":
        return Summary(
            "False",
            mdp.Reason.ROLLED_BACK,
            f"canary revision {status.canary_revision} was rolled back ({why}); stable revision "
            f"{status.stable_revision} serves all traffic. Change the spec to roll out again",
            "stalled",
        )
    if held is not None and held.status == "True":
        return Summary("False", held.reason, held.message, "waiting")
    available = get_condition(conds, mdp.ConditionType.AVAILABLE)
    if status.phase == "Degraded":
        message = available.message if available is not None else "stable pods unavailable"
        return Summary("False", "Degraded", message, "waiting")
    if status.phase in ("Progressing", "Paused"):
        step = "" if status.current_step is None else f", step {status.current_step + 1}"
        state = "paused" if status.phase == "Paused" else "in progress"
        message = (
            f"rollout {state}: canary {status.canary_revision} at {status.canary_weight}%{step} "
            f"against stable {status.stable_revision}"
        )
        return Summary("False", status.phase, message, "reconciling")
    serving = desired is None or (status.stable_revision == desired and status.canary_revision is None)
    if status.phase == "Healthy" and serving and available is not None and available.status == "True":
        return Summary(
            "True",
            mdp.Reason.AVAILABLE,
            f"revision {status.stable_revision} serves: {available.message}",
            "ready",
        )
    if available is not None and available.status != "True":
        return Summary("False", "Unavailable", available.message, "reconciling")
    return Summary("False", status.phase, f"waiting for revision {desired} to serve", "reconciling")


def modeldeployment_conditions(
    status: mdp.ModelDeploymentStatus, desired: str | None, *, now: datetime, generation: int | None
) -> list[Condition]:
    return apply(status.conditions, modeldeployment(status, desired), now=now, generation=generation)


# --- Adapter -------------------------------------------------------------------------------


def adapter_registered(ref: str, job: str, *, now: datetime, generation: int | None) -> dict[str, object]:
    """The status an Adapter gets when its FineTuneJob registers it: candidate, and Ready (the
    artifact was pushed by digest and the digest is what the Adapter pins)."""
    ready = Condition(
        type=adp.ConditionType.READY,
        status="True",
        reason=adp.Reason.REGISTERED,
        message=f"pushed by FineTuneJob {job} and pinned by digest: {ref}",
        observed_generation=generation,
        last_transition_time=rfc3339(now),
    )
    return {
        "state": "candidate",
        "conditions": [ready.to_wire()],
        "observedGeneration": generation,
    }
