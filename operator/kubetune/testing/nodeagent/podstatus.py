"""Pod ``status`` as the kubelet reports it, computed from the pod worker's containers.

Pure functions of the containers' state plus a :class:`Transitions` record that remembers when
each condition last flipped. No I/O; pods.py sends the result as a strategic-merge patch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from kubetune.testing.nodeagent.containers import ContainerRun, now_iso

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")


@dataclasses.dataclass
class PodView:
    """What the status is computed from."""

    pod: Obj
    inits: Sequence[ContainerRun]
    mains: Sequence[ContainerRun]
    failed: bool
    init_done: bool
    sandbox_ready: bool
    pod_ip: str
    host_ip: str
    start_time: str
    failure: str = ""  # set when the agent could not run the pod at all


def mains_done(mains: Sequence[ContainerRun]) -> bool:
    """Every regular container has terminated for good."""
    return bool(mains) and all(c.done for c in mains)


def phase(view: PodView) -> str:
    if view.failed:
        return "Failed"
    if not view.init_done:
        return "Pending"
    if mains_done(view.mains):
        return "Succeeded" if all(c.exit_code == 0 for c in view.mains) else "Failed"
    if any(not c.container_id for c in view.mains):
        return "Pending"
    return "Running"


class Transitions:
    """Remembers each condition's status and when it last changed."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str]] = {}

    def condition(self, kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
        status = "True" if ok else "False"
        prev = self._seen.get(kind)
        if prev is None or prev[0] != status:
            self._seen[kind] = (status, now_iso())
        # Explicit nulls: a strategic merge would otherwise keep an old reason and message.
        return {
            "type": kind,
            "status": status,
            "lastTransitionTime": self._seen[kind][1],
            "lastProbeTime": None,
            "reason": reason if not ok and reason else None,
            "message": message if not ok and message else None,
        }


def render(view: PodView, transitions: Transitions) -> Obj:
    """The full ``status`` object of the pod."""
    current = phase(view)
    terminal = current in TERMINAL
    pending_inits = [c.name for c in view.inits if not (c.done and c.exit_code == 0) and not c.sidecar]
    unready = [c.name for c in view.mains if not c.ready]
    gates = [g["conditionType"] for g in view.pod["spec"].get("readinessGates") or []]
    existing = {
        c.get("type"): c.get("status") for c in (view.pod.get("status") or {}).get("conditions") or []
    }
    gates_ok = all(existing.get(g) == "True" for g in gates)
    ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    unready_message = f"containers with unready status: [{' '.join(unready)}]"
    conditions = [
        transitions.condition("PodReadyToStartContainers", view.sandbox_ready and not terminal),
        transitions.condition(
            "Initialized",
            view.init_done,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(pending_inits)}]",
        ),
        transitions.condition("ContainersReady", not unready and not terminal, ready_reason, unready_message),
        transitions.condition(
            "Ready",
            not unready and not terminal and gates_ok,
            ready_reason if unready or terminal else "ReadinessGatesNotReady",
            unready_message if unready else "",
        ),
    ]
    status: Obj = {
        "phase": current,
        "conditions": conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": view.start_time,
        "containerStatuses": [c.status() for c in view.mains],
    }
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.inits:
        status["initContainerStatuses"] = [c.status() for c in view.inits]
    if view.failure:
        status["reason"] = "NodeAgentError"
        status["message"] = view.failure
    return status
