"""The test node agent: registers nodes and runs the pods bound to them as local processes.

:class:`NodeAgent` is the harness's kubelet. It registers the configured nodes and keeps their
Leases fresh, serves container logs to the API server, forwards the ``kubernetes`` Service to
the API server, provisions hostPath volumes for claims, and watches pods: a pod bound to one
of its nodes gets a :class:`~kubetune.testing.nodeagent.pods.PodWorker`. It runs as its own
process (``python -m kubetune.testing.nodeagent --config agent.yaml``) and stops every pod it
started when it gets SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetune import logs
from kubetune.testing import procs
from kubetune.testing.kube import Kube, is_status
from kubetune.testing.nodeagent import network, nodes, volumes
from kubetune.testing.nodeagent.config import AgentConfig
from kubetune.testing.nodeagent.dns import ClusterDns
from kubetune.testing.nodeagent.kubeletapi import KubeletApi
from kubetune.testing.nodeagent.pods import PodWorker
from kubetune.testing.nodeagent.proxy import TcpForwarder
from kubetune.testing.nodeagent.storage import Provisioner

Obj = dict[str, Any]
log = logging.getLogger(__name__)
WATCH_TIMEOUT_S = 30


class NodeAgent:
    """One agent serving ``config.nodes``; :meth:`run` blocks until :meth:`stop` or SIGTERM."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.kube = Kube.from_kubeconfig(config.kubeconfig)
        self.network = network.PodNetwork(config.network_octet)
        self.node_indexes = {n.name: i for i, n in enumerate(config.nodes)}
        self.node_uids: dict[str, str] = {}
        self.workers: dict[str, PodWorker] = {}
        self.lock = threading.Lock()
        self.used_ips: dict[int, set[int]] = {i: set() for i in range(len(config.nodes))}
        self.gpus: dict[str, dict[str, list[int]]] = {n.name: {} for n in config.nodes}
        self.stop_event = threading.Event()
        self.provisioner = Provisioner(self.kube, config)
        self._closers: list[Any] = []

    # ---- PodHost -------------------------------------------------------------------------
    def node_index(self, node: str) -> int:
        return self.node_indexes[node]

    def allocate_ip(self, node_index: int) -> int:
        with self.lock:
            used = self.used_ips[node_index]
            host = next((h for h in range(2, 255) if h not in used), None)
            if host is None:
                raise network.NetworkError(f"node {node_index} has no free pod IPs")
            used.add(host)
            return host

    def free_ip(self, node_index: int, host: int) -> None:
        with self.lock:
            self.used_ips[node_index].discard(host)

    def allocate_gpus(self, node: str, uid: str, count: int) -> list[int]:
        with self.lock:
            held = self.gpus[node]
            if uid not in held:
                taken = {i for ids in held.values() for i in ids}
                held[uid] = [i for i in range(64) if i not in taken][:count]
            return held[uid]

    def free_gpus(self, node: str, uid: str) -> None:
        with self.lock:
            self.gpus[node].pop(uid, None)

    def event(self, pod: Obj, kind: str, reason: str, message: str, container: str = "") -> None:
        meta = pod["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        involved: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        }
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": pod["spec"].get("nodeName", "")},
            "reportingComponent": "kubelet",
            "reportingInstance": pod["spec"].get("nodeName", ""),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.kube.create(f"/api/v1/namespaces/{meta['namespace']}/events", body)
        except Exception as exc:
            log.debug("event not recorded: %s", exc)

    def sources(self) -> volumes.Sources:
        def get(kind: str) -> Any:
            def lookup(ns: str, name: str) -> Obj | None:
                return self.kube.get_or_none(f"/api/v1/namespaces/{ns}/{kind}/{name}")

            return lookup

        return volumes.Sources(
            configmap=get("configmaps"),
            secret=get("secrets"),
            token=self._token,
            pvc=self.provisioner.claim_path,
        )

    def _token(self, namespace: str, sa: str, audience: str | None, ttl: int) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [audience] if audience else [], "expirationSeconds": ttl},
        }
        try:
            out = self.kube.create(f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token", body)
        except Exception as exc:
            if is_status(exc, 404):
                raise volumes.VolumeError(
                    f'serviceaccount "{sa}" not found in namespace "{namespace}"'
                ) from exc
            raise
        return str(out["status"]["token"])

    def base_env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in self.config.inherit_env if k in os.environ}
        env.setdefault("PATH", os.defpath)
        ip = self.network.kubernetes_service_ip
        env |= {
            "KUBERNETES_SERVICE_HOST": ip,
            "KUBERNETES_SERVICE_PORT": "443",
            "KUBERNETES_SERVICE_PORT_HTTPS": "443",
            "KUBERNETES_PORT": f"tcp://{ip}:443",
            "KUBERNETES_PORT_443_TCP": f"tcp://{ip}:443",
            "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
            "KUBERNETES_PORT_443_TCP_PORT": "443",
            "KUBERNETES_PORT_443_TCP_ADDR": ip,
        }
        return env

    def marks(self) -> dict[str, str]:
        return {procs.MARK_CLUSTER: self.config.cluster_id, procs.MARK_OWNER: str(self.config.owner_pid)}

    def forget(self, worker: PodWorker) -> None:
        with self.lock:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]

    # ---- running -------------------------------------------------------------------------
    def run(self) -> None:
        cfg = self.config
        for d in (cfg.logs_dir, cfg.pods_dir, cfg.volumes_dir):
            d.mkdir(parents=True, exist_ok=True)
        api_host, _, api_port = cfg.api_server.rpartition(":")
        try:
            forwarder = TcpForwarder((self.network.kubernetes_service_ip, 443), (api_host, int(api_port)))
            self._closers.append(forwarder.start())
            kubelet = KubeletApi(
                (self.network.gateway, cfg.kubelet_port),
                cfg.serving_cert,
                cfg.serving_key,
                cfg.container_log,
                self._container_running,
            )
            self._closers.append(kubelet.start())
            self._closers.append(
                ClusterDns(self.kube, self.network.gateway, self.network.kubernetes_service_ip).start()
            )
            self.provisioner.ensure_storage_class()
            for i, node in enumerate(cfg.nodes):
                nodes.register(self.kube, cfg, i, self.network)
                self.node_uids[node.name] = self.kube.get(f"/api/v1/nodes/{node.name}")["metadata"]["uid"]
            self._heartbeat()
            for target, name in ((self._heartbeat_loop, "heartbeat"), (self._provision_loop, "provisioner")):
                threading.Thread(target=target, name=name, daemon=True).start()
            log.info("node agent ready", extra=logs.fields(nodes=list(self.node_indexes)))
            self._watch_loop()
        finally:
            self.shutdown()

    def _container_running(self, ns: str, pod: str, container: str) -> bool:
        with self.lock:
            workers = list(self.workers.values())
        return any(
            w.ns == ns and w.name == pod and any(c.name == container and c.running() for c in w.all)
            for w in workers
        )

    def _heartbeat(self) -> None:
        for node in self.config.nodes:
            nodes.renew_lease(self.kube, self.config, node, self.node_uids.get(node.name))

    def _heartbeat_loop(self) -> None:
        last_status = time.monotonic()
        while not self.stop_event.wait(self.config.heartbeat_s):
            try:
                self._heartbeat()
                if time.monotonic() - last_status > 60:
                    for node in self.config.nodes:
                        nodes.heartbeat_status(self.kube, node)
                    last_status = time.monotonic()
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)

    def _provision_loop(self) -> None:
        passes = 0
        while not self.stop_event.wait(0.5):
            passes += 1
            try:
                self.provisioner.sync(cleanup=passes % 20 == 0)
            except Exception as exc:
                log.warning("volume provisioner pass failed: %s", exc)

    def _watch_loop(self) -> None:
        core = self.kube.core()
        while not self.stop_event.is_set():
            try:
                listing = self.kube.get("/api/v1/pods")
                present = set()
                for pod in listing.get("items") or []:
                    present.add(pod["metadata"]["uid"])
                    self._handle("MODIFIED", pod)
                with self.lock:
                    vanished = [w for uid, w in self.workers.items() if uid not in present]
                for w in vanished:
                    w.removed(w.pod)
                rv = listing["metadata"]["resourceVersion"]
                for event in self.kube.watch(
                    core.list_pod_for_all_namespaces,
                    resource_version=rv,
                    timeout_seconds=WATCH_TIMEOUT_S,
                    allow_watch_bookmarks=True,
                ):
                    if self.stop_event.is_set():
                        break
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self._handle(str(event["type"]), event["object"])
            except Exception as exc:
                if self.stop_event.is_set():
                    break
                log.warning("pod watch interrupted: %s", exc)
                self.stop_event.wait(1.0)

    def _handle(self, kind: str, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self.node_indexes:
            return
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.removed(pod)
            return
        if worker is not None:
            worker.update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") or meta.get("deletionTimestamp"):
            # Not ours to run (finished before this agent started, or deleted before it began).
            if meta.get("deletionTimestamp"):
                with contextlib.suppress(Exception):
                    self.kube.delete(
                        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                        body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
                    )
            return
        worker = PodWorker(self, pod)
        with self.lock:
            self.workers[uid] = worker
        worker.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self) -> None:
        """Stop every pod (short grace), close servers, remove mount points this agent created."""
        self.stop_event.set()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.shutdown()
        for w in workers:
            w.thread.join(timeout=self.config.shutdown_grace_s + 10)
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer.close()
        self._closers.clear()
        self._remove_mountpoints()
        log.info("node agent stopped")

    def _remove_mountpoints(self) -> None:
        """Remove the empty mount points pods made on the host, unless another cluster runs."""
        record = self.config.state_dir / "mountpoints.txt"
        if not record.exists():
            return
        others = [p for p in procs.marked() if p.cluster_id != self.config.cluster_id]
        if others:
            log.info("leaving mount points in place: another test cluster is running")
            return
        paths = sorted(set(record.read_text().splitlines()), key=lambda p: p.count("/"), reverse=True)
        for raw in paths:
            path = Path(raw)
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_size == 0:
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        record.unlink()
