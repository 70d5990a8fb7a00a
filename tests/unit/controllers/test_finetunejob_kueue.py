"""A FineTuneJob in a Kueue queue (pure decisions): Kueue alone (un)suspends the training Job;
the status shows Queued with Kueue's reason, the admission and evictions; a user suspend goes
to the Workload's spec.active. The same job without a queue behaves as before."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.controllers.finetunejob import builders, decide, queueing
from kubetune.controllers.settings import Settings, SettingsError

from .test_finetunejob_decide import NOW, SETTINGS, cond_of, job, passed_preflight, pod

PENDING = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in "
    "flavor default-flavor, 1 more needed"
)


def queued_job(suspend: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"labels": {queueing.LABEL_QUEUE: "team-a"}, "uid": "j1"},
        "spec": {"suspend": suspend},
        "status": {},
    }


def workload(
    *conds: tuple[str, str, str, str], active: bool = True, cq: str | None = None, **status: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "job-bot-train-1", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {"active": active},
        "status": {
            "conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conds],
            **status,
        },
    }
    if cq:
        body["status"]["admission"] = {"clusterQueue": cq}
    return body


def test_the_training_job_of_a_queued_job_is_created_suspended_with_kueues_label() -> None:
    manifest = builders.training_job(job(queueName="team-a"), SETTINGS)
    assert manifest["spec"]["suspend"] is True
    assert manifest["metadata"]["labels"][builders.LABEL_KUEUE_QUEUE] == "team-a"
    # the chart's default queue when the spec names none; no queue: exactly as before
    default = builders.training_job(job(), Settings(default_queue_name="shared"))
    assert default["metadata"]["labels"][builders.LABEL_KUEUE_QUEUE] == "shared"
    plain = builders.training_job(job(), SETTINGS)
    assert plain["spec"]["suspend"] is False and builders.LABEL_KUEUE_QUEUE not in plain["metadata"]["labels"]
    # the preflight stays outside Kueue
    pre = builders.preflight_job(job(queueName="team-a"), SETTINGS)
    assert builders.LABEL_KUEUE_QUEUE not in pre["metadata"]["labels"] and "suspend" not in pre["spec"]


def test_waiting_for_quota_is_queued_with_kueues_reason_and_never_unsuspended_by_the_operator() -> None:
    wl = workload(("QuotaReserved", "False", "Pending", PENDING))
    seen = decide.Observed(
        **passed_preflight(), training_job=queued_job(), workload=wl, local_cluster_queue="team-a-cq"
    )
    d = decide.decide(job({"phase": "Pending"}, queueName="team-a"), seen, SETTINGS, NOW)
    assert d.status.phase == "Queued" and d.actions == []  # never resume_training
    status, reason, message = cond_of(d, "Queued")
    assert (status, reason) == ("True", "Queued")
    assert message == f"waiting in LocalQueue team-a (ClusterQueue team-a-cq): Pending: {PENDING}"
    q = d.status.queue
    assert q is not None and (q.local_queue, q.cluster_queue, q.admitted) == ("team-a", "team-a-cq", False)
    assert "PhaseQueued" in [e.reason for e in d.events]
    ready = cond_of(d, "Ready")
    assert ready[0] == "False" and "insufficient unused quota for nvidia.com/gpu" in ready[2]


def test_no_workload_yet_says_what_to_check() -> None:
    seen = decide.Observed(**passed_preflight(), training_job=queued_job())
    d = decide.decide(job({"phase": "Pending"}, queueName="team-a"), seen, SETTINGS, NOW)
    assert d.status.phase == "Queued"
    assert "LocalQueue team-a exists in namespace ml" in cond_of(d, "Queued")[2]


def test_admission_then_eviction_then_readmission_show_in_status_and_events() -> None:
    admitted = workload(
        ("QuotaReserved", "True", "QuotaReserved", ""),
        ("Admitted", "True", "Admitted", "The workload is admitted"),
        cq="cq",
    )
    seen = decide.Observed(
        **passed_preflight(),
        training_job=queued_job(suspend=False),
        workload=admitted,
        training_pods=[pod(running=True)],
    )
    d = decide.decide(job({"phase": "Queued"}, queueName="team-a"), seen, SETTINGS, NOW)
    assert d.status.phase == "Training" and d.actions == []
    assert cond_of(d, "Queued")[:2] == ("False", "Admitted")
    assert d.status.queue is not None and d.status.queue.admitted
    assert "Admitted" in [e.reason for e in d.events]

    status = d.status.to_wire()
    status["progress"] = {"step": 14, "totalSteps": 40}
    evicted = workload(
        (
            "Evicted",
            "True",
            "Preempted",
            "Preempted to accommodate a workload due to prioritization in the ClusterQueue",
        ),
        ("QuotaReserved", "False", "Pending", PENDING),
        cq=None,
        schedulingStats={"evictions": [{"reason": "Preempted", "underlyingCause": "", "count": 1}]},
    )
    seen = decide.Observed(**passed_preflight(), training_job=queued_job(suspend=True), workload=evicted)
    e = decide.decide(job(status, queueName="team-a"), seen, SETTINGS, NOW)
    assert e.status.phase == "Queued" and e.actions == []
    assert cond_of(e, "Queued")[:2] == ("True", "Evicted")
    assert cond_of(e, "Training")[:2] == ("False", "Evicted") and "step 14" in cond_of(e, "Training")[2]
    assert e.status.queue is not None and e.status.queue.evictions == 1
    assert e.status.queue.cluster_queue == "cq"  # remembered from the admission
    assert {"Evicted", "PhaseQueued"} <= {ev.reason for ev in e.events}


def test_user_suspend_deactivates_the_workload_and_resume_reactivates_it() -> None:
    running = workload(("Admitted", "True", "Admitted", ""), cq="cq")
    seen = decide.Observed(
        **passed_preflight(),
        training_job=queued_job(suspend=False),
        workload=running,
        training_pods=[pod(running=True)],
    )
    ckpt = {"checkpointStorage": {"claimName": "ckpt"}, "queueName": "team-a"}
    d = decide.decide(job({"phase": "Training"}, suspend=True, **ckpt), seen, SETTINGS, NOW)
    assert d.actions == ["deactivate_workload"] and d.status.phase == "Suspended"
    inactive = workload(("Evicted", "True", "Deactivated", "The workload is deactivated"), active=False)
    seen = decide.Observed(**passed_preflight(), training_job=queued_job(suspend=True), workload=inactive)
    again = decide.decide(job(d.status.to_wire(), suspend=True, **ckpt), seen, SETTINGS, NOW)
    assert again.actions == [] and again.status.phase == "Suspended"
    r = decide.decide(job(again.status.to_wire(), suspend=False, **ckpt), seen, SETTINGS, NOW)
    assert r.actions == ["activate_workload"] and r.status.phase == "Queued"
    assert cond_of(r, "Suspended")[:2] == ("False", "Resumed")
    # someone else's deactivation (kueuectl stop) is not undone by the operator
    other = decide.decide(job({"phase": "Queued"}, **ckpt), seen, SETTINGS, NOW)
    assert other.actions == []


def test_read_takes_kueues_words_from_the_workload() -> None:
    assert queueing.read(None) == queueing.Admission()
    got = queueing.read(workload(("QuotaReserved", "False", "Pending", PENDING)))
    assert (got.reserved, got.admitted, got.reason, got.message) == (False, False, "Pending", PENDING)
    assert queueing.job_queue(queued_job()) == "team-a" and queueing.job_queue({"metadata": {}}) is None


def test_the_default_queue_setting_names_the_chart_value_when_it_is_not_a_queue_name() -> None:
    assert Settings.from_env({"KUBETUNE_KUEUE_DEFAULT_QUEUE": " training "}).default_queue_name == "training"
    assert Settings.from_env({"KUBETUNE_KUEUE_DEFAULT_QUEUE": ""}).default_queue_name is None
    with pytest.raises(SettingsError, match=r"kueue\.defaultQueueName\) is 'Team_A'"):
        Settings.from_env({"KUBETUNE_KUEUE_DEFAULT_QUEUE": "Team_A"})
