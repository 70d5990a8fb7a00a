"""A real Prometheus for tests: a Prometheus process on a free 127.0.0.1 port, 1 s scrapes.

Two ways to find what to scrape, chosen when the object is made:

- **file_sd** (``Prometheus(workdir)``): the targets a test writes with :meth:`Prometheus.set_targets`,
  each with the labels it gives (the canary level labels loopback servers the way Kubernetes SD
  would label pods).
- **Kubernetes SD** (``Prometheus.for_cluster(workdir, kubeconfig)``): pods discovered through
  the API server named in ``kubeconfig`` (the test cluster's admin kubeconfig, client
  certificates), like a cluster Prometheus. It keeps the container ports named ``http`` of pods
  labelled ``app.kubernetes.io/managed-by=kubetune`` that are not finished, and relabels every
  series with ``namespace``, ``pod``, ``container``, ``kubetune_io_modeldeployment`` and
  ``kubetune_io_revision`` (from pod labels ``kubetune.io/modeldeployment`` and
  ``kubetune.io/revision``): the labels
  :func:`kubetune.controllers.modeldeployment.analysis.builtin_queries` selects on. With a
  Prometheus built with Kubernetes SD (``hack/build-prometheus.sh``; found through
  ``KUBETUNE_PROMETHEUS_K8S`` or its cache) the job is a real ``kubernetes_sd_configs`` with
  ``role: pod`` and ``kubeconfig_file``. Debian's binary has no Kubernetes SD, so with it
  :class:`~kubetune.testing.podtargets.PodTargets` lists the pods and writes them to file_sd with
  the discoverer's ``__meta_kubernetes_pod_*`` labels, and Prometheus applies the same
  ``relabel_configs``. Prometheus runs in the host network namespace and reaches pod IPs through
  the node agent's host routes. Prometheus passes discovered changes on to scraping at most
  every 5 s, so allow a pod that long (plus a scrape) to appear in or leave the targets.

Either way, ``operator_targets`` adds a job ``kubetune-operator`` with static targets (an
in-process operator's ``/metrics``, e.g. :class:`kubetune.controllers.operator.Probes`) and
``honor_labels``, as the chart's ServiceMonitor scrapes the operator, so its series keep the
``namespace`` of the object they describe.

Either way :meth:`Prometheus.client` is the product's query client; :meth:`Prometheus.series`
and :meth:`Prometheus.targets` expose whole vectors and the target list for assertions. See
:func:`prometheus_available`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import requests

from kubetune.clients import prometheus as promclient
from kubetune.testing.podtargets import PodTargets, sanitize
from kubetune.testing.servers import LOOPBACK, free_port, stop_process
from kubetune.testing.waiting import WaitTimeout, wait_for

PROMETHEUS_BIN = os.environ.get("KUBETUNE_PROMETHEUS", "/usr/bin/prometheus")
K8S_BUILDS = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune")) / "prometheus"
SCRAPE_INTERVAL = "1s"
MANAGED_BY = ("app.kubernetes.io/managed-by", "kubetune")
PORT_NAME = "http"
# pod label -> series label, the way Prometheus sanitises label names (every [^a-zA-Z0-9_] -> _)
POD_LABELS = {
    "kubetune.io/modeldeployment": "kubetune_io_modeldeployment",
    "kubetune.io/revision": "kubetune_io_revision",
}

T = TypeVar("T")
Labels = dict[str, str]


Discovery = Literal["kubernetes_sd", "pod_targets"]


def _meta_pod_label(name: str) -> str:
    return f"__meta_kubernetes_pod_label_{sanitize(name)}"


def kubernetes_sd_binary() -> str | None:
    """A Prometheus with Kubernetes SD: ``$KUBETUNE_PROMETHEUS_K8S``, else the newest one
    ``hack/build-prometheus.sh`` left in the cache; None when there is none."""
    explicit = os.environ.get("KUBETUNE_PROMETHEUS_K8S")
    if explicit:
        return explicit
    built = sorted(K8S_BUILDS.glob("*/bin/prometheus"), key=lambda p: p.stat().st_mtime)
    return str(built[-1]) if built else None


@dataclasses.dataclass(frozen=True)
class KubernetesSD:
    """Pods to discover: through ``kubeconfig``, in ``namespaces`` (empty: all of them)."""

    kubeconfig: Path
    namespaces: Sequence[str] = ()

    @property
    def selector(self) -> str:
        return "=".join(MANAGED_BY)

    def sd_config(self) -> dict[str, Any]:
        """The ``kubernetes_sd_configs`` entry."""
        sd: dict[str, Any] = {
            "role": "pod",
            "kubeconfig_file": str(self.kubeconfig),
            # server-side filter; the relabel "keep" is what guarantees it
            "selectors": [{"role": "pod", "label": self.selector}],
        }
        if self.namespaces:
            sd["namespaces"] = {"names": list(self.namespaces)}
        return sd

    def relabel_configs(self) -> list[dict[str, Any]]:
        """Keep managed pods' ``http`` ports; copy namespace, pod, container and kubetune labels."""
        relabel: list[dict[str, Any]] = [
            {"source_labels": [_meta_pod_label(MANAGED_BY[0])], "regex": MANAGED_BY[1], "action": "keep"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": PORT_NAME,
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Succeeded|Failed", "action": "drop"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        ]
        relabel += [
            {"source_labels": [_meta_pod_label(pod_label)], "target_label": series_label}
            for pod_label, series_label in POD_LABELS.items()
        ]
        return relabel


class Prometheus:
    """A Prometheus process scraping every second, in file_sd mode unless ``kubernetes`` is given.

    In Kubernetes mode ``discovery`` picks ``"kubernetes_sd"`` (needs a ``binary`` with it) or
    ``"pod_targets"`` (any binary); by default the first when :func:`kubernetes_sd_binary` finds
    one, else the second. ``binary`` defaults to that binary, else ``PROMETHEUS_BIN``.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        binary: str | None = None,
        *,
        kubernetes: KubernetesSD | None = None,
        discovery: Discovery | None = None,
        operator_targets: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.kubernetes = kubernetes
        self.targets_file = workdir / "targets.json"
        self.config_file = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pod_targets: PodTargets | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        file_sd = [{"files": [str(self.targets_file)], "refresh_interval": "1s"}]
        scrape: dict[str, Any]
        if kubernetes is None:
            self.discovery: Discovery | None = None
            self.binary = binary or PROMETHEUS_BIN
            self.set_targets({})
            scrape = {"job_name": "kubetune-serve", "file_sd_configs": file_sd}
        else:
            k8s_binary = binary or kubernetes_sd_binary()
            self.discovery = discovery or ("kubernetes_sd" if k8s_binary else "pod_targets")
            if self.discovery == "kubernetes_sd" and not k8s_binary:
                raise ValueError(
                    "no Prometheus with Kubernetes SD (Debian's has none): run hack/build-prometheus.sh, "
                    "set KUBETUNE_PROMETHEUS_K8S, or use discovery='pod_targets'"
                )
            self.binary = (k8s_binary if self.discovery == "kubernetes_sd" else binary) or PROMETHEUS_BIN
            scrape = {"job_name": "kubetune-pods", "relabel_configs": kubernetes.relabel_configs()}
            if self.discovery == "kubernetes_sd":
                scrape["kubernetes_sd_configs"] = [kubernetes.sd_config()]
            else:
                scrape["file_sd_configs"] = file_sd
                self.pod_targets = PodTargets(
                    kubernetes.kubeconfig,
                    self.targets_file,
                    namespaces=kubernetes.namespaces,
                    selector=kubernetes.selector,
                )
        scrapes = [scrape]
        if operator_targets:
            scrapes.append(
                {
                    "job_name": "kubetune-operator",
                    "honor_labels": True,
                    "static_configs": [{"targets": list(operator_targets)}],
                }
            )
        config = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "scrape_configs": scrapes,
        }
        # JSON is YAML; no PyYAML needed to write it
        self.config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")

    @classmethod
    def for_cluster(
        cls,
        workdir: Path,
        kubeconfig: Path,
        namespaces: Sequence[str] = (),
        *,
        binary: str | None = None,
        discovery: Discovery | None = None,
        operator_targets: Sequence[str] = (),
    ) -> Prometheus:
        """Kubernetes mode: discover kubetune pods through ``kubeconfig`` (not started yet)."""
        sd = KubernetesSD(kubeconfig, tuple(namespaces))
        return cls(
            workdir, binary=binary, kubernetes=sd, discovery=discovery, operator_targets=operator_targets
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self, timeout_s: float = 2.0) -> promclient.Client:
        return promclient.Client(self.url, timeout_s=timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # ---- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, deadline_s: float = 60.0) -> None:
        if self.pod_targets is not None:
            self.pod_targets.start()
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address={LOOPBACK}:{self.port}",
                    "--web.enable-lifecycle",
                    "--log.level=warn",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{self.log()[-3000:]}")
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        try:
            self._wait(ready, deadline_s, "prometheus to be ready")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.pod_targets is not None:
            self.pod_targets.stop()
        if self.proc is not None:
            stop_process(self.proc)

    # ---- targets -------------------------------------------------------------------------
    def set_targets(self, targets: dict[str, dict[str, str]]) -> None:
        """file_sd mode: replace the scraped targets, ``{"127.0.0.1:port": {"namespace": ..., ...}}``."""
        if self.kubernetes is not None:
            raise TypeError("this Prometheus discovers pods through the API server; it takes no targets")
        groups = [{"targets": [address], "labels": labels} for address, labels in targets.items()]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups), encoding="utf-8")
        tmp.replace(self.targets_file)  # atomic: Prometheus never reads half a file

    def targets(self) -> list[dict[str, Any]]:
        """The active targets (``/api/v1/targets``): ``labels``, ``health``, ``lastError``, ``scrapeUrl``..."""
        response = requests.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=5)
        response.raise_for_status()
        active: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return active

    # ---- queries -------------------------------------------------------------------------
    def series(self, promql: str) -> list[tuple[Labels, float]]:
        """Every series of an instant-vector query now: (labels, value) pairs."""
        response = requests.post(f"{self.url}/api/v1/query", data={"query": promql}, timeout=5)
        body = response.json()
        if body.get("status") != "success":
            raise promclient.PrometheusQueryError(f"query {promql!r}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] != "vector":
            raise promclient.PrometheusQueryError(f"query {promql!r} returned a {data['resultType']}")
        return [(dict(s["metric"]), float(s["value"][1])) for s in data["result"]]

    def target_metadata(self, job: str) -> list[dict[str, Any]]:
        """``# TYPE`` and ``# HELP`` of every family the targets of ``job`` exposed in their last
        scrape (``/api/v1/targets/metadata``), samples or not: ``metric``, ``type``, ``help``."""
        response = requests.get(
            f"{self.url}/api/v1/targets/metadata", params={"match_target": f'{{job="{job}"}}'}, timeout=5
        )
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["data"]
        return found

    def wait_scraped(self, namespace: str, count: int, deadline_s: float = 30.0) -> None:
        """Until ``count`` targets of ``namespace`` are up (discovery and the first scrape done)."""
        client = self.client()
        query = f'count(up{{namespace="{namespace}"}} == 1)'
        self._wait(lambda: client.query(query) == count, deadline_s, f"{count} targets up in {namespace}")

    def wait_up(self, namespace: str, pods: Collection[str], deadline_s: float = 60.0) -> dict[str, Labels]:
        """Kubernetes SD mode: until exactly ``pods`` of ``namespace`` have ``up == 1`` (no other
        pod of it has an ``up`` series); returns each pod's ``up`` labels by pod name."""
        want = set(pods)
        query = f'up{{namespace="{namespace}"}}'

        def settled() -> tuple[dict[str, Labels]] | None:
            found = self.series(query)
            by_pod = {labels.get("pod", ""): labels for labels, _ in found}
            up = {labels.get("pod", "") for labels, value in found if value == 1}
            return (by_pod,) if set(by_pod) == want and up == want else None  # a tuple: {} is falsy

        (by_pod,) = self._wait(settled, deadline_s, f"up == 1 for exactly pods {sorted(want)} of {namespace}")
        return by_pod

    def wait_targets(
        self, accept: Callable[[list[dict[str, Any]]], bool], deadline_s: float, what: str
    ) -> list[dict[str, Any]]:
        """Until ``accept(self.targets())``; returns that target list."""

        def check() -> list[dict[str, Any]] | None:
            found = self.targets()
            return found if accept(found) else None

        return self._wait(check, deadline_s, what)

    def _wait(self, check: Callable[[], T | None], deadline_s: float, what: str) -> T:
        unavailable = (requests.RequestException, promclient.PrometheusUnreachable)
        try:
            return wait_for(check, deadline_s, what, interval=0.2, ignore=unavailable)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\nlast lines of {self.log_path}:\n{self.log()[-3000:]}") from None


def prometheus_available(binary: str = PROMETHEUS_BIN) -> str | None:
    """None when the binary is there, else why not."""
    if shutil.which(binary) is None:
        return f"{binary} not found (apt-get install prometheus, or set KUBETUNE_PROMETHEUS)"
    return None
