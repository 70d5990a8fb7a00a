"""Kubernetes pod discovery for a Prometheus built without it: pods -> file_sd target groups.

Debian's ``prometheus`` package has no Kubernetes SD (removed for its dependencies; its config
parser rejects ``kubernetes_sd_configs``). :class:`PodTargets` does the discovery half in the
test process: it lists the pods matching a label selector through the API server every
``interval_s`` and writes one file_sd target per container port, with the ``__address__`` and
``__meta_kubernetes_*`` labels Prometheus' ``role: pod`` discoverer gives it (pods without an IP
yet are skipped, as Prometheus does). Prometheus then runs the very ``relabel_configs`` a
``kubernetes_sd_configs`` job would, so series get the same labels either way.
:mod:`kubetune.testing.prometheus` uses it when no Prometheus with Kubernetes SD is available.
:func:`target_groups` is pure; only the thread talks to the API server.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubetune.testing.kube import Kube

log = logging.getLogger(__name__)
Obj = dict[str, Any]
META = "__meta_kubernetes_"


def sanitize(name: str) -> str:
    """A label or annotation name as Prometheus writes it into a meta label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _pod_meta(pod: Obj) -> dict[str, str]:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    labels: dict[str, str] = {
        f"{META}namespace": meta.get("namespace", ""),
        f"{META}pod_name": meta.get("name", ""),
        f"{META}pod_ip": status.get("podIP", ""),
        f"{META}pod_ready": str(conditions.get("Ready", "unknown")).lower(),
        f"{META}pod_phase": status.get("phase", ""),
        f"{META}pod_node_name": spec.get("nodeName", ""),
        f"{META}pod_host_ip": status.get("hostIP", ""),
        f"{META}pod_uid": meta.get("uid", ""),
    }
    for kind, values in (("label", meta.get("labels")), ("annotation", meta.get("annotations"))):
        for key, value in (values or {}).items():
            labels[f"{META}pod_{kind}_{sanitize(key)}"] = value
            labels[f"{META}pod_{kind}present_{sanitize(key)}"] = "true"
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            labels[f"{META}pod_controller_kind"] = ref.get("kind", "")
            labels[f"{META}pod_controller_name"] = ref.get("name", "")
    return labels


def target_groups(pods: Sequence[Obj]) -> list[Obj]:
    """file_sd groups for ``pods``: one target per container port (or per portless container)."""
    groups: list[Obj] = []
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            continue
        base = _pod_meta(pod)
        spec = pod.get("spec") or {}
        containers = [(c, "false") for c in spec.get("containers") or []]
        containers += [(c, "true") for c in spec.get("initContainers") or []]
        for container, init in containers:
            common = {
                **base,
                f"{META}pod_container_name": container.get("name", ""),
                f"{META}pod_container_image": container.get("image", ""),
                f"{META}pod_container_init": init,
            }
            ports = container.get("ports") or []
            if not ports:
                groups.append({"targets": [ip], "labels": common})
            for port in ports:
                number = port.get("containerPort")
                labels = {
                    **common,
                    f"{META}pod_container_port_name": port.get("name", ""),
                    f"{META}pod_container_port_number": str(number),
                    f"{META}pod_container_port_protocol": port.get("protocol", "TCP"),
                }
                groups.append({"targets": [f"{ip}:{number}"], "labels": labels})
    return groups


class PodTargets:
    """A thread that keeps ``path`` (a file_sd file) equal to the discovered pods' targets."""

    def __init__(
        self,
        kubeconfig: Path,
        path: Path,
        *,
        namespaces: Sequence[str] = (),
        selector: str = "",
        interval_s: float = 0.5,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.path = path
        self.namespaces = list(namespaces)
        self.selector = selector
        self.interval_s = interval_s
        self.error: BaseException | None = None  # the last failed listing, cleared by a good one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-targets", daemon=True)
        self._written = ""

    def start(self) -> None:
        self.write([])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def write(self, groups: list[Obj]) -> None:
        text = json.dumps(groups, sort_keys=True)
        if text == self._written:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.path)  # atomic: Prometheus never reads half a file
        self._written = text

    def _list(self, kube: Kube) -> list[Obj]:
        query = {"labelSelector": self.selector} if self.selector else {}
        if not self.namespaces:
            return kube.list("/api/v1/pods", **query)
        return [pod for ns in self.namespaces for pod in kube.list(f"/api/v1/namespaces/{ns}/pods", **query)]

    def _run(self) -> None:
        kube = Kube.from_kubeconfig(self.kubeconfig)
        try:
            while not self._stop.is_set():
                try:
                    self.write(target_groups(self._list(kube)))
                    self.error = None
                except Exception as exc:  # keep the last targets; a later listing may work
                    if self.error is None:
                        log.warning("listing pods for Prometheus failed: %s", exc)
                    self.error = exc
                self._stop.wait(self.interval_s)
        finally:
            kube.close()
