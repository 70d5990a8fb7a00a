"""Integration level: one real control plane and node agent for the whole session.

``cluster`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the node
agent (``kubetune.testing``), exports KUBECONFIG for kopf and the official client, and stops
everything at the end. When the binaries are missing the level is skipped with the command
that builds them, unless KUBETUNE_REQUIRE_CLUSTER is set (CI), where that is an error.

``helm`` is the helm CLI the chart tests render with (``hack/build-helm.sh``), skipped without
it unless KUBETUNE_REQUIRE_HELM is set.

``kstatus`` and ``lua`` are the real parts the GitOps tests judge objects with (cli-utils' kstatus,
built by ``hack/build-kstatus.sh``; Debian's lua5.4 for the Argo CD health scripts), skipped
without them unless KUBETUNE_REQUIRE_CLUSTER is set.

``kubetune_crds`` installs every file in ``crds/`` (each on its own, so one rejected CRD does
not hide the others) and reports what the API server accepted and refused.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetune.testing import BinariesNotFound, Cluster, CrdReport, crds, find_binaries, gitops
from kubetune.testing.binaries import Binaries
from kubetune.testing.kube import Kube

REPO = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO / "crds"
HELM_CACHE = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune")) / "helm"


def find_helm() -> str | None:
    """``$KUBETUNE_HELM``, else the newest build ``hack/build-helm.sh`` cached, else PATH."""
    explicit = os.environ.get("KUBETUNE_HELM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    built = sorted(HELM_CACHE.glob("*/bin/helm"), key=lambda p: p.stat().st_mtime)
    return str(built[-1]) if built else shutil.which("helm")


@pytest.fixture(scope="session")
def helm() -> str:
    found = find_helm()
    if found is None:
        message = "no helm binary: run hack/build-helm.sh (or set KUBETUNE_HELM to one)"
        if os.environ.get("KUBETUNE_REQUIRE_HELM"):
            pytest.fail(f"KUBETUNE_REQUIRE_HELM is set but {message}", pytrace=False)
        pytest.skip(f"{message}; set KUBETUNE_REQUIRE_HELM=1 to make this an error")
    return found


def _required(found: str | None, message: str) -> str:
    if found is None:
        if os.environ.get("KUBETUNE_REQUIRE_CLUSTER"):
            pytest.fail(f"KUBETUNE_REQUIRE_CLUSTER is set but {message}", pytrace=False)
        pytest.skip(f"{message}; set KUBETUNE_REQUIRE_CLUSTER=1 to make this an error")
    return found


@pytest.fixture(scope="session")
def kstatus() -> str:
    """The kstatus binary (sigs.k8s.io/cli-utils), as Flux computes health."""
    return _required(gitops.find_kstatus(), f"no kstatus binary: {gitops.BUILD_HINT}")


@pytest.fixture(scope="session")
def lua() -> str:
    """A Lua interpreter for the chart's Argo CD health scripts."""
    return _required(gitops.find_lua(), f"no Lua interpreter: {gitops.LUA_HINT}")


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    """The control-plane binaries; skips (or, under KUBETUNE_REQUIRE_CLUSTER, fails) without them."""
    try:
        return find_binaries()
    except BinariesNotFound as exc:
        if os.environ.get("KUBETUNE_REQUIRE_CLUSTER"):
            pytest.fail(f"KUBETUNE_REQUIRE_CLUSTER is set but {exc}", pytrace=False)
        pytest.skip(f"{exc} (set KUBETUNE_REQUIRE_CLUSTER=1 to make this an error)")


@pytest.fixture(scope="session")
def cluster(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    test_cluster = Cluster(tmp_path_factory.mktemp("cluster"), binaries=binaries)
    test_cluster.start()
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in test_cluster.timings.items())
    print(f"\ntest cluster up ({timings}); state in {test_cluster.state_dir}")
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(test_cluster.kubeconfig)
    try:
        yield test_cluster
    finally:
        test_cluster.stop()
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    """Dict-in, dict-out REST calls as the cluster admin."""
    return cluster.kube


@pytest.fixture(scope="session")
def kubetune_crds(cluster: Cluster) -> CrdReport:
    """Every CRD in crds/, installed file by file; what was accepted and what was refused."""
    return crds.install_each(cluster.kube, [CRDS_DIR])


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount), deleted after the test."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().removeprefix("test_"))[:40].strip("-")
    name = cluster.create_namespace(f"{base}-{uuid.uuid4().hex[:5]}")
    yield name
    cluster.kube.delete(f"/api/v1/namespaces/{name}")
