"""A real Kubernetes control plane on loopback ports, for tests and local mode.

:class:`Cluster` starts etcd -> kube-apiserver (TLS, client certs, RBAC, ServiceAccount
admission) -> kube-controller-manager + kube-scheduler, each in its own process group, waits
for each to be healthy, then the node agent (the harness's kubelet, see ``nodeagent``) and
waits for its nodes to be Ready, then installs CRDs and waits for them to be Established.
:meth:`Cluster.stop` stops them in reverse order (SIGTERM, then SIGKILL) and sweeps anything
still carrying the cluster's mark; it also runs at interpreter exit.

Binaries come from ``hack/build-control-plane.sh`` (see :func:`find_binaries`). Everything a
cluster writes lives in its ``state_dir``: ``pki/``, ``kubeconfig``, ``logs/<component>.log``,
``logs/<ns>_<pod>_<container>.log``, ``agent.yaml`` and ``state.json``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kubetune.testing import crds, pki, procs
from kubetune.testing.binaries import K8S_VERSION, Binaries, find_binaries
from kubetune.testing.kube import Kube, api_client, is_status
from kubetune.testing.nodeagent import network
from kubetune.testing.nodeagent.config import AgentConfig, ImageRule, NodeSpec, default_images, default_nodes
from kubetune.testing.waiting import wait_for

log = logging.getLogger(__name__)
Obj = dict[str, Any]

_LIVE: list[Cluster] = []


class ClusterError(RuntimeError):
    """The cluster failed to start; the message names the component and quotes its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding pyproject.toml."""
    here = (start or Path.cwd()).resolve()
    return next((p for p in (here, *here.parents) if (p / "pyproject.toml").exists()), here)


class Cluster:
    """One test cluster. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        nodes: Sequence[NodeSpec] | None = None,
        images: Sequence[ImageRule] | None = None,
        crd_paths: Iterable[Path] = (),
        binaries: Binaries | None = None,
        agent: bool = True,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.nodes = list(default_nodes() if nodes is None else nodes)
        self.images = list(default_images() if images is None else images)
        self.crd_paths = list(crd_paths)
        self.binaries = binaries
        self.with_agent = agent and bool(self.nodes)
        self.cluster_id = uuid.uuid4().hex[:12]
        self.owner_pid = os.getpid()
        self.processes: dict[str, procs.Process] = {}
        self.network: network.PodNetwork | None = None
        self.timings: dict[str, float] = {}
        self.crds: list[str] = []
        self._kube: Kube | None = None
        self._started = False
        self.ports: dict[str, int] = {}

    # ---- paths and clients ---------------------------------------------------------------
    @property
    def pki(self) -> pki.Pki:
        return pki.Pki(self.state_dir / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def agent_state_dir(self) -> Path:
        return self.state_dir / "agent"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube.from_kubeconfig(self.kubeconfig)
        return self._kube

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` for the admin kubeconfig."""
        return api_client(self.kubeconfig)

    def container_log(self, namespace: str, pod: str, container: str) -> Path:
        return self.agent_state_dir / "logs" / f"{namespace}_{pod}_{container}.log"

    def env(self) -> dict[str, str]:
        """Environment for a client process (kubectl, kopf) to reach this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        binaries = self.binaries or find_binaries()
        return subprocess.run(
            [str(binaries.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    # ---- start ---------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _marks(self) -> dict[str, str]:
        return {procs.MARK_CLUSTER: self.cluster_id, procs.MARK_OWNER: str(self.owner_pid)}

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> procs.Process:
        proc = procs.Process(
            name, argv, self.logs_dir / f"{name}.log", {**(env or os.environ), **self._marks()}
        )
        self.processes[name] = proc
        proc.start()
        return proc

    def _wait_healthy(self, name: str, url: str, timeout: float, client_cert: bool = False) -> None:
        context = ssl.create_default_context(cafile=str(self.pki.ca_crt)) if url.startswith("https") else None
        if context is not None and client_cert:
            context.load_cert_chain(str(self.pki.admin_crt), str(self.pki.admin_key))
        proc = self.processes[name]

        def healthy() -> bool:
            if not proc.running():
                raise ClusterError(
                    f"{name} exited with code {proc.exit_code()} during start-up; "
                    f"last lines of {proc.log_path}:\n{proc.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                    body = resp.read().decode()
                    return resp.status == 200 and ("ok" in body or '"health":"true"' in body)
            except OSError:
                return False

        wait_for(healthy, timeout, f"{name} to answer {url}", interval=0.1)

    def start(self) -> Cluster:
        """Start everything; raises :class:`ClusterError` (after cleaning up) on failure."""
        if self._started:
            return self
        t0 = time.monotonic()
        procs.reap_orphans()
        self.binaries = self.binaries or find_binaries()
        self._started = True
        _LIVE.append(self)
        try:
            self._start(t0)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, t0: float) -> None:
        b = self.binaries
        assert b is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # A cluster always starts empty: data, keys and logs of an earlier run would mislead.
        for stale in ("etcd", "pki", "logs", "agent"):
            shutil.rmtree(self.state_dir / stale, ignore_errors=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.with_agent:
            reason = network.available()
            if reason:
                raise ClusterError(reason)
            self.network = network.claim(self.owner_pid)
        net = self.network
        service_cidr = net.service_cidr if net else "10.0.0.0/24"
        ips = [net.gateway, net.kubernetes_service_ip] if net else ["10.0.0.1"]
        p = pki.create(self.pki.dir, ips=ips)
        self.ports = {
            k: free_port() for k in ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler", "kubelet")
        }
        self._write_state(ready=False)
        pki.admin_kubeconfig(p, self.kubeconfig, self.server)
        etcd_url = f"http://127.0.0.1:{self.ports['etcd']}"
        peer_url = f"http://127.0.0.1:{self.ports['etcd_peer']}"
        self._spawn(
            "etcd",
            [
                str(b.etcd),
                "--name=kubetune",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=kubetune={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait_healthy("etcd", f"{etcd_url}/health", 20)
        self.timings["etcd"] = time.monotonic() - t0
        self._spawn(
            "kube-apiserver",
            [
                str(b.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={p.serving_crt}",
                f"--tls-private-key-file={p.serving_key}",
                f"--client-ca-file={p.ca_crt}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p.sa_pub}",
                f"--service-account-signing-key-file={p.sa_key}",
                f"--service-cluster-ip-range={service_cidr}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--kubelet-preferred-address-types=InternalIP",
                # Service-backed admission webhooks (the chart's) are called at an endpoint's pod
                # IP, not the ClusterIP: there is no kube-proxy here (Service ClusterIPs are not
                # routed), but the host reaches pod IPs.
                "--enable-aggregator-routing=true",
                f"--kubelet-client-certificate={p.admin_crt}",
                f"--kubelet-client-key={p.admin_key}",
            ],
        )
        self._wait_healthy("kube-apiserver", f"{self.server}/readyz", 60, client_cert=True)
        self.timings["apiserver"] = time.monotonic() - t0
        kc = str(self.kubeconfig)
        common = [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--tls-cert-file={p.serving_crt}",
            f"--tls-private-key-file={p.serving_key}",
        ]
        self._spawn(
            "kube-controller-manager",
            [
                str(b.kube_controller_manager),
                *common,
                f"--secure-port={self.ports['kcm']}",
                f"--root-ca-file={p.ca_crt}",
                f"--service-account-private-key-file={p.sa_key}",
                f"--cluster-signing-cert-file={p.ca_crt}",
                f"--cluster-signing-key-file={p.ca_key}",
                f"--service-cluster-ip-range={service_cidr}",
                "--controllers=*",
                "--pvclaimbinder-sync-period=5s",
            ],
        )
        self._spawn(
            "kube-scheduler", [str(b.kube_scheduler), *common, f"--secure-port={self.ports['scheduler']}"]
        )
        if self.with_agent:
            self._start_agent()
        self._wait_healthy("kube-controller-manager", f"https://127.0.0.1:{self.ports['kcm']}/healthz", 60)
        self._wait_healthy("kube-scheduler", f"https://127.0.0.1:{self.ports['scheduler']}/healthz", 60)
        # The ServiceAccount controller running proves the controller-manager works, and pods
        # in "default" need that account (ServiceAccount admission is on).
        self.wait_for_service_account("default")
        self.timings["control_plane"] = time.monotonic() - t0
        if self.with_agent:
            self._wait_nodes()
        self.timings["nodes"] = time.monotonic() - t0
        if self.crd_paths:
            self.crds = self.install_crds(self.crd_paths)
        self.timings["total"] = time.monotonic() - t0
        self._write_state(ready=True)
        log.info("test cluster ready in %.1fs: %s", self.timings["total"], self.kubeconfig)

    def mark_ready(self, **extra: object) -> None:
        """Rewrite ``state.json`` as ready, with ``extra`` keys (e.g. after more set-up steps)."""
        self._write_state(ready=True, extra=extra)

    def _start_agent(self) -> None:
        assert self.network is not None
        cfg = AgentConfig(
            kubeconfig=self.kubeconfig,
            state_dir=self.agent_state_dir,
            cluster_id=self.cluster_id,
            owner_pid=self.owner_pid,
            api_server=f"127.0.0.1:{self.ports['apiserver']}",
            network_octet=self.network.octet,
            serving_cert=self.pki.serving_crt,
            serving_key=self.pki.serving_key,
            kubelet_port=self.ports["kubelet"],
            kubelet_version=f"v{K8S_VERSION}",
            nodes=self.nodes,
            images=self.images,
        )
        self.agent_state_dir.mkdir(parents=True, exist_ok=True)
        path = cfg.dump(self.state_dir / "agent.yaml")
        self._spawn("nodeagent", [sys.executable, "-m", "kubetune.testing.nodeagent", "--config", str(path)])

    def _wait_nodes(self) -> None:
        want = {n.name for n in self.nodes}
        agent = self.processes["nodeagent"]

        def ready() -> bool:
            if not agent.running():
                raise ClusterError(f"node agent exited during start-up:\n{agent.log_tail()}")
            ok = set()
            for node in self.kube.list("/api/v1/nodes"):
                conds = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions") or []}
                taints = [t for t in (node.get("spec") or {}).get("taints") or [] if "not-ready" in t["key"]]
                if conds.get("Ready") == "True" and not taints:
                    ok.add(node["metadata"]["name"])
            return want <= ok

        wait_for(ready, 60, f"nodes {sorted(want)} to be Ready", interval=0.2)

    def wait_for_service_account(self, namespace: str, name: str = "default", timeout: float = 30) -> None:
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}"
        wait_for(
            lambda: self.kube.get_or_none(path), timeout, f"serviceaccount {namespace}/{name}", interval=0.1
        )

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        """Create ``name`` and wait for its default ServiceAccount, so pods can be admitted."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
        try:
            self.kube.create("/api/v1/namespaces", body)
        except Exception as exc:
            if not is_status(exc, 409):
                raise
        self.wait_for_service_account(name)
        return name

    # ---- CRDs ----------------------------------------------------------------------------
    def install_crds(self, paths: Iterable[Path], timeout: float = 30) -> list[str]:
        """Create or update every CRD in ``paths`` (files or dirs of *.yaml), wait Established.

        Raises :class:`~kubetune.testing.crds.CrdRejected` with the API server's reason.
        """
        return crds.install(self.kube, paths, timeout)

    # ---- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop all components (reverse order), sweep marked stragglers, release the network."""
        if not self._started:
            return
        self._started = False
        with contextlib.suppress(ValueError):
            _LIVE.remove(self)
        graces = {"nodeagent": 20.0, "kube-scheduler": 5.0, "kube-controller-manager": 5.0}
        for name in ("nodeagent", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self.processes.get(name)
            if proc is not None:
                proc.stop(grace=graces.get(name, 5.0))
        leftovers = procs.marked(self.cluster_id)
        if leftovers:
            log.warning("killing leftover processes of cluster %s: %s", self.cluster_id, leftovers)
            procs.kill_pids((p.pid for p in leftovers), grace=1.0)
        if self.network is not None:
            network.release(self.network)
            self.network = None
        if self._kube is not None:
            self._kube.close()
            self._kube = None
        self._write_state(ready=False, stopped=True)

    def _write_state(
        self, *, ready: bool, stopped: bool = False, extra: dict[str, object] | None = None
    ) -> None:
        if not self.state_dir.exists():
            return
        state = {
            "cluster_id": self.cluster_id,
            "owner_pid": self.owner_pid,
            "ready": ready,
            "stopped": stopped,
            "kubeconfig": str(self.kubeconfig),
            "server": self.server if self.ports else "",
            "network_octet": self.network.octet if self.network else None,
            "pids": {name: p.pid for name, p in self.processes.items() if p.popen is not None},
            "timings": self.timings,
            "crds": self.crds,
            **(extra or {}),
        }
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2))


@atexit.register
def _stop_all() -> None:
    for cluster in list(_LIVE):
        with contextlib.suppress(Exception):
            cluster.stop()
