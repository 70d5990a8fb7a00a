"""End-to-end level: the integration level's real parts, reused, plus a real Prometheus.

The control plane, node agent, namespace, tiny model PVC and registry fixtures are the
integration level's own (``tests/integration/conftest.py`` and
``tests/integration/operator/conftest.py``), loaded here from their files so the two levels
share one definition. What is new: ``prometheus`` discovers the namespace's kubetune pods
through the API server (Kubernetes SD, or its stand-in on a Debian Prometheus without it; see
:mod:`kubetune.testing.prometheus`), and the integration level's ``operator`` runs with that
Prometheus as its default analysis backend (``operator_settings`` is overridden here). That
Prometheus also scrapes the in-process operator's ``/metrics`` (job ``kubetune-operator``,
served by ``operator_metrics`` on a port chosen before Prometheus starts), so the chart's
dashboards and docs/metrics.md can be checked against a real scrape.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster
from kubetune.testing.prometheus import Prometheus, prometheus_available
from kubetune.testing.servers import LOOPBACK, free_port

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION / "operator"))  # ftj_helpers, mdep_helpers


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_level = _load("kubetune_integration_conftest", INTEGRATION / "conftest.py")
_operator = _load("kubetune_integration_operator_conftest", INTEGRATION / "operator" / "conftest.py")
binaries = _level.binaries
cluster = _level.cluster
kube = _level.kube
kubetune_crds = _level.kubetune_crds
namespace = _level.namespace
tiny_assets = _operator.tiny_assets
data_pvc = _operator.data_pvc
adapter_registry = _operator.adapter_registry
operator = _operator.operator


@pytest.fixture
def operator_metrics_port() -> int:
    return free_port()


@pytest.fixture
def prometheus(
    cluster: Cluster, namespace: str, tmp_path: Path, operator_metrics_port: int
) -> Iterator[Prometheus]:
    """A Prometheus scraping the kubetune pods of ``namespace`` and the operator every second."""
    problem = prometheus_available()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    with Prometheus.for_cluster(
        tmp_path / "prometheus",
        cluster.kubeconfig,
        [namespace],
        operator_targets=[f"{LOOPBACK}:{operator_metrics_port}"],
    ) as prom:
        yield prom


@pytest.fixture
def operator_metrics(
    operator: kubetune_operator.Operator, operator_metrics_port: int
) -> Iterator[kubetune_operator.Probes]:
    """The operator's ``/metrics`` (and probes) on ``operator_metrics_port``, as ``run`` serves them."""
    probes = kubetune_operator.Probes(operator, (LOOPBACK, operator_metrics_port))
    probes.start()
    try:
        yield probes
    finally:
        probes.stop()


@pytest.fixture
def operator_settings(prometheus: Prometheus, adapter_registry: str) -> Settings:
    """The integration level's operator, with ``prometheus`` as its default analysis backend."""
    return Settings(
        insecure_registries=(adapter_registry.removeprefix("oci://"),),
        prometheus_url=prometheus.url,
        default_registry=f"{adapter_registry}/adapters",
    )
