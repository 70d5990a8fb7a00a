"""kopf handlers of the ModelDeployment controller: thin triggers for one ``reconcile()``.

Any change of a ModelDeployment (spec, the promote and abort annotations, the initial listing
after a restart), of its Deployments or pods (found by the ``kubetune.io/modeldeployment``
label), and the creation or change of an Adapter it names, calls
:meth:`Reconciler.reconcile`. A timer keeps a rollout moving (pauses, analysis intervals)
while one is under way; a Healthy ModelDeployment costs no API calls. No logic here.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubetune.api.v1alpha1 import GROUP, VERSION
from kubetune.controllers import serial
from kubetune.controllers.modeldeployment import builders
from kubetune.controllers.modeldeployment.reconcile import Reconciler

PLURAL = "modeldeployments"
# Phases in which time alone moves the rollout (a pause ends, an analysis is due), or a
# missing Adapter may appear.
ACTIVE_PHASES = frozenset({"Pending", "Progressing", "Paused"})


def _active(body: kopf.Body, **_: Any) -> bool:
    return (body.get("status") or {}).get("phase", "Pending") in ACTIVE_PHASES


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler, *, resync_seconds: float) -> None:
    """Register every handler of the controller into ``registry``."""

    retry = serial.Retry(reconciler.reconcile, kind="ModelDeployment")

    def run(namespace: str | None, name: str | None) -> None:
        if namespace and name:
            retry.call(namespace, name)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def changed(namespace: str | None, name: str | None, type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            # A pending retry is left to fire: it finds the object gone, or a new one of its
            # name, which this (possibly late) DELETED must not strand (see serial.PerObject).
            if namespace and name:
                reconciler.forget(namespace, name, body.metadata.uid)
            return
        run(namespace, name)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=resync_seconds, when=_active, registry=registry)
    def resync(namespace: str | None, name: str | None, **_: Any) -> None:
        run(namespace, name)

    children: dict[str, Any] = {builders.LABEL_MDEP: kopf.PRESENT, "app.kubernetes.io/managed-by": "kubetune"}

    @kopf.on.event("apps", "v1", "deployments", labels=children, registry=registry)
    def deployment_changed(namespace: str | None, labels: kopf.Labels, type: str | None, **_: Any) -> None:
        if type is None:  # the initial listing; the ModelDeployment's own listing covers it
            return
        run(namespace, labels.get(builders.LABEL_MDEP))

    @kopf.on.event("", "v1", "pods", labels=children, registry=registry)
    def pod_changed(namespace: str | None, labels: kopf.Labels, type: str | None, **_: Any) -> None:
        if type is None:
            return
        run(namespace, labels.get(builders.LABEL_MDEP))

    @kopf.on.event(GROUP, VERSION, "adapters", registry=registry)
    def adapter_changed(namespace: str | None, name: str | None, type: str | None, **_: Any) -> None:
        if type is None or not namespace or not name:
            return
        for mdep in reconciler.serving(namespace, name):
            run(namespace, mdep)


__all__ = ["ACTIVE_PHASES", "register"]
