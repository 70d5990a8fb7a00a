"""Kueue admission of a FineTuneJob's training Job, read from Kueue's Workload (pure).

A FineTuneJob with a queue (``spec.queueName`` or the operator's default) gets a training Job
labelled ``kueue.x-k8s.io/queue-name`` and created suspended. From then on Kueue owns the Job's
``spec.suspend``: it unsuspends the Job when it admits its Workload (all pods of the Job as one
unit) and suspends it again when it evicts it (preemption, reclaim by a lending queue,
deactivation). The operator never writes that field of such a Job; a user's ``spec.suspend``
goes to Kueue as the Workload's ``spec.active`` (what ``kueuectl stop workload`` does), and
Kueue evicts and later re-admits it. Kueue creates one Workload per Job, labelled with the Job's
uid (:data:`LABEL_JOB_UID`); :func:`read` turns it into what the FineTuneJob's status shows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.controllers.settings import Settings

Obj = dict[str, Any]

API_VERSION = "kueue.x-k8s.io/v1beta2"
# Kueue's label on a Workload naming the uid of the job it stands for
# (sigs.k8s.io/kueue pkg/controller/constants JobUIDLabel)
LABEL_JOB_UID = "kueue.x-k8s.io/job-uid"
# Kueue's label naming the LocalQueue of a job (sigs.k8s.io/kueue pkg/controller/constants)
LABEL_QUEUE = "kueue.x-k8s.io/queue-name"


def queue_name(job: FineTuneJob, settings: Settings) -> str | None:
    """The Kueue LocalQueue of the training Job: the spec's, else the operator's default."""
    return job.spec.queue_name or settings.default_queue_name


@dataclasses.dataclass(frozen=True)
class Admission:
    """Where a Workload stands, in the words the FineTuneJob's status uses."""

    workload: str | None = None
    cluster_queue: str | None = None
    active: bool = True  # spec.active: False once deactivated (a user suspend)
    reserved: bool = False  # QuotaReserved=True
    admitted: bool = False  # Admitted=True
    evicted: bool = False  # Evicted=True (until Kueue requeues or re-admits it)
    reason: str = ""
    message: str = ""
    evictions: int = 0


def job_queue(job: Obj | None) -> str | None:
    """The LocalQueue a Job was submitted to (its Kueue label); None for a Job outside Kueue."""
    labels = ((job or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_QUEUE)
    return str(value) if value else None


def _conditions(workload: Obj) -> dict[str, Obj]:
    return {
        str(c.get("type")): c for c in (workload.get("status") or {}).get("conditions") or [] if c.get("type")
    }


def read(workload: Obj | None) -> Admission:
    """The admission state of ``workload`` (None: Kueue has not created it yet)."""
    if workload is None:
        return Admission()
    status = workload.get("status") or {}
    conds = _conditions(workload)

    def true(type: str) -> Obj | None:
        cond = conds.get(type)
        return cond if cond is not None and cond.get("status") == "True" else None

    evicted = true("Evicted")
    reserved = true("QuotaReserved")
    admitted = true("Admitted")
    # the most telling condition: an eviction, then the admission, then why quota is not reserved
    telling = evicted or admitted or reserved or conds.get("QuotaReserved") or conds.get("Requeued")
    evictions = sum(
        int(e.get("count") or 0) for e in (status.get("schedulingStats") or {}).get("evictions") or []
    )
    admission = status.get("admission") or {}
    return Admission(
        workload=str((workload.get("metadata") or {}).get("name") or "") or None,
        cluster_queue=str(admission.get("clusterQueue") or "") or None,
        active=(workload.get("spec") or {}).get("active", True) is not False,
        reserved=reserved is not None,
        admitted=admitted is not None,
        evicted=evicted is not None,
        reason=str((telling or {}).get("reason") or ""),
        message=str((telling or {}).get("message") or ""),
        evictions=evictions,
    )


def newest(workloads: list[Obj]) -> Obj | None:
    """The Workload of a Job when Kueue's listing has several (it keeps one; others go away)."""
    live = [w for w in workloads if not (w.get("metadata") or {}).get("deletionTimestamp")]
    return max(
        live, key=lambda w: str((w.get("metadata") or {}).get("creationTimestamp") or ""), default=None
    )
