"""Fixtures for the Kueue tests: the real Kueue controller-manager against the test cluster.

``kueue`` (package scope: only these tests pay for it, and its webhooks are gone before any
other test runs) installs Kueue's CRDs and RBAC and starts its manager with URL-based webhook
configurations (kubetune.testing.kueue). ``queues`` makes a ResourceFlavor and, per call, a
ClusterQueue with quotas and its LocalQueue in the test's namespace; both are removed after
the test. Skipped without ``hack/build-kueue.sh``'s build unless KUBETUNE_REQUIRE_CLUSTER is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubetune.testing import Cluster
from kubetune.testing import kueue as kueue_harness
from kubetune.testing.kube import Kube

KUEUE = "/apis/kueue.x-k8s.io/v1beta2"
FLAVOR = "default-flavor"


@pytest.fixture(scope="package")
def kueue(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kueue_harness.Kueue]:
    root = kueue_harness.find_install()
    if root is None:
        message = f"no Kueue build: {kueue_harness.BUILD_HINT}"
        if os.environ.get("KUBETUNE_REQUIRE_CLUSTER"):
            pytest.fail(f"KUBETUNE_REQUIRE_CLUSTER is set but {message}", pytrace=False)
        pytest.skip(f"{message}; set KUBETUNE_REQUIRE_CLUSTER=1 to make this an error")
    workdir = tmp_path_factory.mktemp("kueue")
    with kueue_harness.Kueue(root, cluster.kube, cluster.pki, cluster.server, workdir) as running:
        cluster.kube.apply(
            f"{KUEUE}/resourceflavors/{FLAVOR}",
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": FLAVOR}},
        )
        yield running


def cluster_queue(
    name: str, *, gpus: int, cohort: str | None = None, borrowing_limit: int | None = None, **spec: Any
) -> dict[str, Any]:
    """A ClusterQueue with ``gpus`` nominal nvidia.com/gpu (and ample cpu and memory)."""
    gpu: dict[str, Any] = {"name": "nvidia.com/gpu", "nominalQuota": gpus}
    if borrowing_limit is not None:
        gpu["borrowingLimit"] = borrowing_limit
    body: dict[str, Any] = {
        "namespaceSelector": {},
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                "flavors": [
                    {
                        "name": FLAVOR,
                        "resources": [
                            {"name": "cpu", "nominalQuota": 16},
                            {"name": "memory", "nominalQuota": "64Gi"},
                            gpu,
                        ],
                    }
                ],
            }
        ],
        **spec,
    }
    if cohort:
        body["cohortName"] = cohort
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": body,
    }


@pytest.fixture
def queues(kueue: kueue_harness.Kueue, kube: Kube, namespace: str) -> Iterator[Callable[..., str]]:
    """``make(local, gpus=N, ...)``: a ClusterQueue (unique name) and LocalQueue ``local`` in the
    test namespace pointing at it; returns the ClusterQueue's name."""
    made: list[str] = []

    def make(local: str, *, gpus: int, **kwargs: Any) -> str:
        name = f"{local}-{uuid.uuid4().hex[:5]}"
        kube.create(f"{KUEUE}/clusterqueues", cluster_queue(name, gpus=gpus, **kwargs))
        made.append(name)
        kube.create(
            f"{KUEUE}/namespaces/{namespace}/localqueues",
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "LocalQueue",
                "metadata": {"name": local},
                "spec": {"clusterQueue": name},
            },
        )
        return name

    yield make
    for name in made:
        kube.delete(f"{KUEUE}/clusterqueues/{name}")
