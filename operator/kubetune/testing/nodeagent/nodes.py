"""Node objects and heartbeats: what makes the scheduler and node-lifecycle see healthy nodes.

Registers each configured node (labels, podCIDR, capacity = allocatable, Ready conditions,
InternalIP, kubelet endpoint, nodeInfo) and keeps its Lease in ``kube-node-lease`` renewed, so
the controller-manager's node-lifecycle controller never marks it NotReady. API calls only.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import uuid
from datetime import UTC, datetime
from typing import Any

from kubetune.testing.kube import Kube, is_status
from kubetune.testing.nodeagent.config import AgentConfig, NodeSpec
from kubetune.testing.nodeagent.network import PodNetwork

Obj = dict[str, Any]
log = logging.getLogger(__name__)
AGENT_ANNOTATION = "kubetune.io/test-node-agent"


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions() -> list[Obj]:
    now = _now()
    pressure = [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ]
    conds = [
        {
            "type": t,
            "status": "False",
            "reason": r,
            "message": m,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for t, r, m in pressure
    ]
    conds.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubetune test node agent is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    )
    return conds


def node_status(cfg: AgentConfig, node: NodeSpec, net: PodNetwork) -> Obj:
    capacity = node.capacity()
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": _conditions(),
        "addresses": [
            {"type": "InternalIP", "address": net.gateway},
            {"type": "Hostname", "address": node.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.kubelet_port}},
        "nodeInfo": {
            "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, node.name).hex,
            "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, node.name)),
            "bootID": cfg.cluster_id,
            "kernelVersion": platform.release(),
            "osImage": "kubetune test node",
            "containerRuntimeVersion": "kubetune://0.1.0",
            "kubeletVersion": cfg.kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": node.all_labels()["kubernetes.io/arch"],
        },
    }


def register(kube: Kube, cfg: AgentConfig, index: int, net: PodNetwork) -> None:
    """Create (or update) the Node object and its status."""
    node = cfg.nodes[index]
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": node.all_labels(),
            "annotations": {AGENT_ANNOTATION: cfg.cluster_id},
        },
        "spec": {
            "podCIDR": net.node_cidr(index),
            "podCIDRs": [net.node_cidr(index)],
            "taints": node.taints or None,
        },
    }
    if not node.taints:
        del body["spec"]["taints"]
    try:
        kube.create("/api/v1/nodes", body)
    except Exception as exc:
        if not is_status(exc, 409):
            raise
        kube.patch(f"/api/v1/nodes/{node.name}", {"metadata": body["metadata"], "spec": body["spec"]})
    kube.patch(f"/api/v1/nodes/{node.name}/status", {"status": node_status(cfg, node, net)}, kind="strategic")


def heartbeat_status(kube: Kube, node: NodeSpec) -> None:
    """Refresh the node conditions' heartbeat times (the kubelet does this every few minutes)."""
    kube.patch(
        f"/api/v1/nodes/{node.name}/status", {"status": {"conditions": _conditions()}}, kind="strategic"
    )


def renew_lease(kube: Kube, cfg: AgentConfig, node: NodeSpec, node_uid: str | None) -> None:
    """Create or renew the node's Lease in ``kube-node-lease``."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
    spec = {
        "holderIdentity": node.name,
        "leaseDurationSeconds": cfg.lease_duration_s,
        "renewTime": _micro_now(),
    }
    try:
        kube.patch(path, {"spec": spec})
        return
    except Exception as exc:
        if not is_status(exc, 404):
            raise
    meta: Obj = {"name": node.name, "namespace": "kube-node-lease"}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node_uid}]
    with contextlib.suppress(Exception):
        kube.create(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec},
        )
