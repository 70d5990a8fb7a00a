"""The kstatus summary (Ready / Reconciling / Stalled) each kind gets from its status.

These check the conventions the summary keeps; tests/integration/gitops checks what the real
kstatus library and the Argo CD Lua scripts make of live objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobStatus
from kubetune.api.v1alpha1.modeldeployment import ModelDeploymentStatus
from kubetune.controllers import readiness
from kubetune.controllers.finetunejob import decide
from kubetune.controllers.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T0 = "2026-01-01T11:00:00Z"


def cond(type: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type, "status": status, "reason": reason, "message": message, "lastTransitionTime": T0}


def types(conditions: list[Any]) -> dict[str, str]:
    return {c.type: c.status for c in conditions}


def ftj(phase: str, *conds: dict[str, Any], **extra: Any) -> FineTuneJobStatus:
    return FineTuneJobStatus.model_validate({"phase": phase, "conditions": list(conds), **extra})


def mdep(phase: str, *conds: dict[str, Any], **extra: Any) -> ModelDeploymentStatus:
    return ModelDeploymentStatus.model_validate({"phase": phase, "conditions": list(conds), **extra})


def test_a_running_finetunejob_is_reconciling_and_not_ready() -> None:
    for phase in ("Pending", "Validating", "Training", "Evaluating", "Exporting"):
        out = readiness.finetunejob_conditions(ftj(phase), now=NOW, generation=3)
        assert types(out) == {"Ready": "False", "Reconciling": "True"}, phase
        assert all(c.observed_generation == 3 for c in out)


def test_a_succeeded_finetunejob_is_ready_with_the_registration_as_reason() -> None:
    status = ftj(
        "Succeeded",
        cond("Reconciling", "True", "Training"),
        cond("Succeeded", "True", "AdapterRegistered", "registered Adapter bot (oci://r/x@sha256:1)"),
    )
    out = readiness.finetunejob_conditions(status, now=NOW, generation=1)
    assert types(out) == {"Succeeded": "True", "Ready": "True"}  # Reconciling is removed, not False
    ready = next(c for c in out if c.type == "Ready")
    assert (ready.reason, ready.message) == (
        "AdapterRegistered",
        "registered Adapter bot (oci://r/x@sha256:1)",
    )


def test_a_failed_finetunejob_is_stalled_and_says_how_to_run_it_again() -> None:
    status = ftj("Failed", cond("Failed", "True", "GateNotMet", "rougeL improved 0.01 < 0.05"))
    out = readiness.finetunejob_conditions(status, now=NOW, generation=1)
    assert types(out) == {"Failed": "True", "Ready": "False", "Stalled": "True"}
    stalled = next(c for c in out if c.type == "Stalled")
    assert stalled.reason == "GateNotMet"
    assert "rougeL improved 0.01 < 0.05" in stalled.message and "new name" in stalled.message


def test_a_suspended_finetunejob_is_neither_reconciling_nor_stalled() -> None:
    status = ftj("Suspended", cond("Suspended", "True", "Suspended", "GPUs freed"))
    out = readiness.finetunejob_conditions(status, now=NOW, generation=2)
    assert types(out) == {"Suspended": "True", "Ready": "False"}
    assert next(c for c in out if c.type == "Ready").reason == "Suspended"


def test_a_training_stall_keeps_the_job_reconciling() -> None:
    status = ftj("Training", cond("TrainingStalled", "True", "Stalled", "no training step reported for 960s"))
    summary = readiness.finetunejob(status)
    assert summary.state == "reconciling" and "960s" in summary.message


def test_ready_keeps_its_transition_time_while_its_status_holds() -> None:
    first = readiness.finetunejob_conditions(ftj("Training"), now=NOW, generation=1)
    later = datetime(2026, 1, 1, 13, 0, 0, tzinfo=UTC)
    again = readiness.finetunejob_conditions(
        FineTuneJobStatus(phase="Training", conditions=first), now=later, generation=1
    )
    assert next(c for c in again if c.type == "Ready").last_transition_time == "2026-01-01T12:00:00Z"


def test_decide_writes_the_summary_without_an_event_for_it() -> None:
    from kubetune.api.v1alpha1 import FineTuneJob

    job = FineTuneJob.model_validate(
        {
            "metadata": {"name": "bot", "namespace": "ml", "uid": "u1", "generation": 1},
            "spec": {"baseModel": {"uri": "pvc://data/model"}, "dataset": {"uri": "pvc://data/t.jsonl"}},
        }
    )
    d = decide.decide(job, decide.Observed(), Settings(default_registry="oci://r.test/ml"), NOW)
    assert types(d.status.conditions)["Reconciling"] == "True"
    assert not [e for e in d.events if e.reason in ("Validating",) or "Ready" in e.message]


def test_a_modeldeployment_serving_its_desired_revision_is_ready() -> None:
    status = mdep(
        "Healthy",
        cond("Available", "True", "Available", "2/2 pods of revision abc available"),
        stableRevision="abc",
    )
    out = readiness.modeldeployment_conditions(status, "abc", now=NOW, generation=4)
    assert types(out)["Ready"] == "True" and "Reconciling" not in types(out) and "Stalled" not in types(out)


def test_a_modeldeployment_whose_stable_is_not_the_desired_revision_is_not_ready() -> None:
    status = mdep("Healthy", cond("Available", "True", "Available"), stableRevision="abc")
    assert readiness.modeldeployment(status, "def").ready == "False"


def test_a_rollout_in_progress_or_paused_is_reconciling() -> None:
    for phase in ("Progressing", "Paused"):
        status = mdep(
            phase,
            cond("Available", "True", "Available"),
            stableRevision="abc",
            canaryRevision="def",
            canaryWeight=20,
            currentStep=1,
        )
        summary = readiness.modeldeployment(status, "def")
        assert (summary.ready, summary.state) == ("False", "reconciling")
        assert "canary def at 20%, step 2" in summary.message


def test_a_rolled_back_canary_is_stalled_until_the_spec_changes() -> None:
    status = mdep(
        "RolledBack",
        cond("Available", "True", "Available"),
        cond("Progressing", "False", "RolledBack", "2 failed analyses (failureLimit 2)"),
        stableRevision="abc",
        canaryRevision="def",
    )
    summary = readiness.modeldeployment(status, "def")
    assert (summary.state, summary.reason) == ("stalled", "RolledBack")
    assert "failureLimit 2" in summary.message and "Change the spec" in summary.message


def test_a_missing_adapter_is_waited_for_not_stalled() -> None:
    # GitOps commits the ModelDeployment while the FineTuneJob that registers the Adapter runs
    status = mdep("Pending", cond("Progressing", "False", "AdapterNotFound", "Adapter bot not found"))
    summary = readiness.modeldeployment(status, None)
    assert summary.state == "reconciling" and "Adapter bot not found" in summary.message


def test_a_held_rollout_and_lost_stable_pods_wait_without_stalling() -> None:
    held = mdep(
        "Progressing",
        cond("RolloutStalled", "True", "ProgressDeadlineExceeded", "holding at weight 20%"),
        stableRevision="abc",
        canaryRevision="def",
    )
    assert readiness.modeldeployment(held, "def").state == "waiting"
    lost = mdep("Degraded", cond("Available", "False", "Unavailable", "0/2 pods"), stableRevision="abc")
    assert readiness.modeldeployment(lost, "abc").state == "waiting"


def test_a_refused_modeldeployment_is_stalled() -> None:
    status = mdep("Failed", cond("Progressing", "False", "InvalidSpec", "spec.replicas: must be >= 0"))
    out = readiness.modeldeployment_conditions(status, None, now=NOW, generation=2)
    assert types(out)["Stalled"] == "True" and "Reconciling" not in types(out)


def test_never_reconciling_and_stalled_at_once() -> None:
    status = ftj("Failed", cond("Reconciling", "True", "Training"), cond("Failed", "True", "TrainingFailed"))
    out = readiness.finetunejob_conditions(status, now=NOW, generation=1)
    assert not ({"Reconciling", "Stalled"} <= set(types(out)))


def test_a_registered_adapter_is_a_ready_candidate() -> None:
    status = readiness.adapter_registered("oci://r/x@sha256:1", "bot", now=NOW, generation=1)
    assert status["state"] == "candidate" and status["observedGeneration"] == 1
    (ready,) = status["conditions"]  # type: ignore[misc]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Registered")


def test_a_spec_changed_after_the_job_finished_is_named_in_its_summary() -> None:
    done = cond("Succeeded", "True", "AdapterRegistered", "registered Adapter bot")
    status = ftj("Succeeded", {**done, "observedGeneration": 2}, observedGeneration=3)
    summary = readiness.finetunejob(status)
    assert summary.ready == "True" and "finished at generation 2" in summary.message
    assert "new name" in summary.message
    same = ftj("Succeeded", {**done, "observedGeneration": 3}, observedGeneration=3)
    assert readiness.finetunejob(same).message == "registered Adapter bot"
