"""kopf handlers of the FineTuneJob controller: thin triggers for one ``reconcile()``.

Any watch event of a FineTuneJob (creation, a spec change, the initial listing after a
restart) except the one its own status write caused, a periodic timer while the trainer runs
(live progress, stall detection, cost), a requeue while the job waits on its children
(``IDLE_RESYNC_SECONDS`` without a reconcile), any change of a child Job or pod (found by the
``kubetune.io/finetunejob`` label) and a FailedCreate Event on a child Job (the API server
refused its pods) call :meth:`Reconciler.reconcile` with the job's namespace
and name; a failed reconcile is retried with backoff (:class:`serial.Retry`). Only watching handlers: kopf's
create/update/resume handlers would PATCH a diff-base annotation onto every job, and on a small
control plane every call counts (``benchmarks/operator``). Handlers are registered into a given
registry by :func:`register`, so the timer interval comes from settings and tests can build a
private registry. The filters here only drop events that cannot change a decision.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubetune.api.v1alpha1 import GROUP, VERSION
from kubetune.clients import kube as kubeclient
from kubetune.controllers import serial
from kubetune.controllers.finetunejob import builders, decide, observe, queueing
from kubetune.controllers.finetunejob.reconcile import Reconciler

PLURAL = "finetunejobs"
# Phases in which the trainer runs: the timer reads its progress, cost and stalls. Earlier
# phases move on child Job and pod events alone, so idle or queued jobs cost no API calls.
RUNNING_PHASES = frozenset({"Training", "Evaluating", "Exporting"})
# Phases that move on child events alone. Should an event be lost or handled out of order, a job
# there is reconciled again once no reconcile has run for this long (serial.Retry's requeue, not
# a kopf timer: those add a finalizer, a PATCH per new job): a lost event costs a minute, never a
# job that waits forever.
WAITING_PHASES = frozenset({"Pending", "Validating", "Queued"})
IDLE_RESYNC_SECONDS = 60.0


def _running(body: kopf.Body, **_: Any) -> bool:
    return (body.get("status") or {}).get("phase") in RUNNING_PHASES


def requeue_after(decision: object) -> float | None:
    """Seconds after which to reconcile a job again when nothing else has: set while the job
    waits on its children (:data:`WAITING_PHASES`)."""
    if isinstance(decision, decide.Decision) and decision.status.phase in WAITING_PHASES:
        return IDLE_RESYNC_SECONDS
    return None


def just_created(type: str | None, obj: object) -> dict[str, Any] | None:
    """The object of an ADDED event for a FineTuneJob that was just created (not one listed after
    a restart): it has no children yet, so reconcile need not look for any. Its status is then
    absent, or the CRD's default (observedGeneration 0) until the operator writes one."""
    if type != "ADDED" or not isinstance(obj, dict):
        return None
    return dict(obj) if not (obj.get("status") or {}).get("observedGeneration") else None


def _preflight_pending(job: kopf.Body) -> bool:
    """A preflight Job that exists and has no outcome yet: the FineTuneJob waits on it as it
    did when the Job was created (Validating), so its status updates cannot move anything."""
    return observe.job_outcome(dict(job))[0] in ("active", "suspended")


def _about_a_job(body: kopf.Body, **_: Any) -> bool:
    involved = body.get("involvedObject") or {}
    return involved.get("kind") == "Job" and involved.get("apiVersion") == "batch/v1"


def _about_a_workload(body: kopf.Body, **_: Any) -> bool:
    involved = body.get("involvedObject") or {}
    group = str(involved.get("apiVersion") or "").split("/", 1)[0]
    return involved.get("kind") == "Workload" and group == queueing.API_VERSION.split("/", 1)[0]


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler, *, resync_seconds: float) -> None:
    """Register every handler of the controller into ``registry``."""

    def run(namespace: str | None, name: str | None, new_object: dict[str, Any] | None = None) -> None:
        if namespace and name:
            retry.call(namespace, name, new_object=new_object)

    retry = serial.Retry(reconciler.reconcile, kind="FineTuneJob", requeue=requeue_after)

    # One watching handler instead of kopf's create/update/resume: those store a diff-base
    # annotation (an extra PATCH and watch event per change) and add nothing a level-based
    # reconcile needs. The initial listing after a restart (type None) is the resume; a spec
    # change is an event like any other.
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def changed(
        namespace: str | None,
        name: str | None,
        type: str | None,
        event: kopf.RawEvent,
        body: kopf.Body,
        **_: Any,
    ) -> None:
        if type == "DELETED":
            # Children go with their owner references; registry artifacts and Adapters stay.
            # kopf handles each uid's events apart, so this DELETED may come after the first
            # events of a new job of the same name (deleted and applied again): it forgets only
            # its own uid, and a pending retry is left to fire (it finds the job gone, or the
            # new one, whose retry this must not cancel).
            if namespace and name:
                reconciler.forget(namespace, name, body.metadata.uid)
            return
        if namespace and name and reconciler.wrote(namespace, name, body.metadata.get("resourceVersion")):
            return  # our own status write: the reconcile that made it already saw this state
        fresh = just_created(type, event.get("object"))
        run(namespace, name, fresh)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=resync_seconds, when=_running, registry=registry)
    def resync(namespace: str | None, name: str | None, **_: Any) -> None:
        run(namespace, name)

    children: dict[str, Any] = {
        builders.LABEL_JOB: kopf.PRESENT,
        builders.LABEL_MANAGED_BY: "kubetune",
    }

    @kopf.on.event("batch", "v1", "jobs", labels=children, registry=registry)
    def job_changed(
        namespace: str | None, labels: kopf.Labels, type: str | None, body: kopf.Body, **_: Any
    ) -> None:
        if (
            type != "DELETED"
            and labels.get(builders.LABEL_COMPONENT) == "preflight"
            and _preflight_pending(body)
        ):
            return
        run(namespace, labels.get(builders.LABEL_JOB))

    # Trainer pods only: their scheduling and start move the phase. A preflight pod's outcome
    # reaches us through its Job's status, so its many status updates trigger nothing.
    pod_labels: dict[str, Any] = {builders.LABEL_JOB: kopf.PRESENT, builders.LABEL_COMPONENT: "trainer"}

    @kopf.on.event("", "v1", "pods", labels=pod_labels, registry=registry)
    def pod_changed(namespace: str | None, labels: kopf.Labels, type: str | None, **_: Any) -> None:
        if type is None:  # the initial listing; the FineTuneJob's own listing covers it
            return
        run(namespace, labels.get(builders.LABEL_JOB))

    # When the API server refuses a child Job's pods (a ResourceQuota, a LimitRange, Pod
    # Security), the Job controller records a FailedCreate Event and retries; the Job itself
    # does not change, so that Event is the only thing that can wake the job's reconcile.
    @kopf.on.event(
        "", "v1", "events", field="reason", value="FailedCreate", when=_about_a_job, registry=registry
    )
    def pods_refused(namespace: str | None, type: str | None, body: kopf.Body, **_: Any) -> None:
        if type not in ("ADDED", "MODIFIED") or not namespace:
            return  # the initial listing: the FineTuneJob's own listing covers it
        involved = body.get("involvedObject") or {}
        job = reconciler.kube.get(kubeclient.path("batch/v1", "Job", namespace, str(involved.get("name"))))
        meta = (job or {}).get("metadata") or {}
        labels = meta.get("labels") or {}
        if meta.get("uid") == involved.get("uid") and labels.get(builders.LABEL_MANAGED_BY) == "kubetune":
            run(namespace, labels.get(builders.LABEL_JOB))

    # Kueue records an Event on a training Job's Workload when it cannot admit it (and why),
    # reserves quota or evicts it: those change the Workload, not the Job. Events are a core
    # resource, so this watch needs no Kueue API installed.
    @kopf.on.event("", "v1", "events", when=_about_a_workload, registry=registry)
    def workload_event(namespace: str | None, type: str | None, body: kopf.Body, **_: Any) -> None:
        if type not in ("ADDED", "MODIFIED") or not namespace:
            return
        involved = body.get("involvedObject") or {}
        url = kubeclient.path(queueing.API_VERSION, "Workload", namespace, str(involved.get("name")))
        try:
            workload = reconciler.kube.get(url)
        except kubeclient.ApiError:
            return
        owner = next(
            (
                o
                for o in ((workload or {}).get("metadata") or {}).get("ownerReferences") or []
                if o.get("kind") == "Job" and o.get("apiVersion") == "batch/v1"
            ),
            None,
        )
        if owner is None:
            return
        job = reconciler.kube.get(kubeclient.path("batch/v1", "Job", namespace, str(owner.get("name"))))
        meta = (job or {}).get("metadata") or {}
        labels = meta.get("labels") or {}
        if meta.get("uid") == owner.get("uid") and labels.get(builders.LABEL_MANAGED_BY) == "kubetune":
            name = labels.get(builders.LABEL_JOB)
            if name:
                run(namespace, name)


__all__ = ["RUNNING_PHASES", "decide", "register"]
