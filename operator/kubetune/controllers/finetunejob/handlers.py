"""kopf handlers of the FineTuneJob controller: thin triggers for one ``reconcile()``.

Create, spec update and operator resume of a FineTuneJob, a periodic timer while the trainer
runs (live progress, stall detection, cost), and any change of a child Job or pod (found by
the ``kubetune.io/finetunejob`` label) all call :meth:`Reconciler.reconcile` with the job's
namespace and name. Handlers are registered into a given registry by :func:`register`, so the
timer interval comes from settings and tests can build a private registry. No logic here.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubetune.api.v1alpha1 import GROUP, VERSION
from kubetune.controllers.finetunejob import builders, decide
from kubetune.controllers.finetunejob.reconcile import Reconciler

PLURAL = "finetunejobs"
# Phases in which the trainer runs: the timer reads its progress, cost and stalls. Earlier
# phases move on child Job and pod events alone, so idle or queued jobs cost no API calls.
RUNNING_PHASES = frozenset({"Training", "Evaluating", "Exporting"})


def _running(body: kopf.Body, **_: Any) -> bool:
    return (body.get("status") or {}).get("phase") in RUNNING_PHASES


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler, *, resync_seconds: float) -> None:
    """Register every handler of the controller into ``registry``."""

    def run(namespace: str | None, name: str | None) -> None:
        if namespace and name:
            reconciler.reconcile(namespace, name)

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    def created(namespace: str | None, name: str | None, **_: Any) -> None:
        run(namespace, name)

    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    def updated(namespace: str | None, name: str | None, **_: Any) -> None:
        run(namespace, name)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    def resumed(namespace: str | None, name: str | None, **_: Any) -> None:
        run(namespace, name)

    @kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, registry=registry)
    def deleted(namespace: str | None, name: str | None, **_: Any) -> None:
        # Children go with their owner references; registry artifacts and Adapters stay.
        if namespace and name:
            reconciler.forget(namespace, name)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=resync_seconds, when=_running, registry=registry)
    def resync(namespace: str | None, name: str | None, **_: Any) -> None:
        run(namespace, name)

    children: dict[str, Any] = {
        builders.LABEL_JOB: kopf.PRESENT,
        builders.LABEL_MANAGED_BY: "kubetune",
    }

    @kopf.on.event("batch", "v1", "jobs", labels=children, registry=registry)
    def job_changed(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
        run(namespace, labels.get(builders.LABEL_JOB))

    # Trainer pods only: their scheduling and start move the phase. A preflight pod's outcome
    # reaches us through its Job's status, so its many status updates trigger nothing.
    pod_labels: dict[str, Any] = {builders.LABEL_JOB: kopf.PRESENT, builders.LABEL_COMPONENT: "trainer"}

    @kopf.on.event("", "v1", "pods", labels=pod_labels, registry=registry)
    def pod_changed(namespace: str | None, labels: kopf.Labels, type: str | None, **_: Any) -> None:
        if type is None:  # the initial listing; resume handlers cover it
            return
        run(namespace, labels.get(builders.LABEL_JOB))


__all__ = ["RUNNING_PHASES", "decide", "register"]
