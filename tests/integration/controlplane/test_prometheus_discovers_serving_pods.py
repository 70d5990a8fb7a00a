"""Prometheus finds kubetune's TGI pods through the API server and labels their series by revision.

A Deployment of two TGI pods (``kubetune serve`` on a tiny model from a hostPath volume) carries
the labels the ModelDeployment controller puts on its pods; a decoy pod with a port named
``http`` but without ``app.kubernetes.io/managed-by=kubetune`` must not be scraped. The series
must carry the labels the canary analysis selects on, and a pod removed by scaling down must
leave Prometheus' targets.

Every discovery available runs side by side on the same pods: ``pod_targets`` (Debian's
Prometheus, which has no Kubernetes SD, fed by the harness' pod lister) always, and
``kubernetes_sd`` (a real ``kubernetes_sd_configs`` job) when ``hack/build-prometheus.sh`` has
built a Prometheus with it; KUBETUNE_REQUIRE_PROMETHEUS_K8S=1 makes its absence a failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kubetune.controllers.modeldeployment import engines
from kubetune.testing import Cluster, wait_for
from kubetune.testing.kube import Kube
from kubetune.testing.prometheus import Discovery, Prometheus, kubernetes_sd_binary, prometheus_available
from kubetune.testing.servers import build_tiny_model

pytestmark = pytest.mark.timeout(420)

TGI_IMAGE = "ghcr.io/huggingface/text-generation-inference:3.0.1"
MDEP, REVISION = "tiny", "rev0123456"
PORT = 8080
LABELS = {
    "kubetune.io/modeldeployment": MDEP,
    "kubetune.io/revision": REVISION,
    "app.kubernetes.io/managed-by": "kubetune",
}
DECOY = "import http.server as h; h.HTTPServer(('0.0.0.0', 8080), h.SimpleHTTPRequestHandler).serve_forever()"


@pytest.fixture
def proms(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[dict[Discovery, Prometheus]]:
    """One started Prometheus per discovery available, all watching ``namespace``."""
    why = prometheus_available()
    if why is not None:
        pytest.skip(why)
    modes: list[Discovery] = ["pod_targets"]
    if kubernetes_sd_binary() is not None:
        modes.append("kubernetes_sd")
    elif os.environ.get("KUBETUNE_REQUIRE_PROMETHEUS_K8S"):
        pytest.fail(
            "KUBETUNE_REQUIRE_PROMETHEUS_K8S is set but no Prometheus with Kubernetes SD: run hack/build-prometheus.sh"
        )
    with contextlib.ExitStack() as stack:
        started: dict[Discovery, Prometheus] = {}
        for mode in modes:
            instance = Prometheus.for_cluster(
                tmp_path / mode, cluster.kubeconfig, [namespace], discovery=mode
            )
            started[mode] = stack.enter_context(instance)
        print(f"\nprometheus discovery: {', '.join(f'{m} ({p.binary})' for m, p in started.items())}")
        yield started


def tgi_deployment(model_dir: Path, mount: Path, replicas: int) -> dict[str, Any]:
    """Serves ``model_dir`` (a host directory) through a hostPath volume mounted at ``mount``.

    Pods see the host's filesystem (their mount namespace is a private copy of it) and the node
    agent creates missing mount points on the host, so ``mount`` is under the test's tmp dir."""
    args = ["--model-id", str(mount), "--port", str(PORT), "--hostname", "0.0.0.0", "--num-threads", "1"]
    container = {
        "name": "tgi",
        "image": TGI_IMAGE,
        "args": args,
        "env": [
            {"name": "OMP_NUM_THREADS", "value": "1"},
            {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
            {"name": "HF_HUB_OFFLINE", "value": "1"},
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "volumeMounts": [{"name": "model", "mountPath": str(mount), "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 1},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{MDEP}-{REVISION}", "labels": LABELS},
        "spec": {
            "replicas": replicas,
            "selector": {
                "matchLabels": {k: LABELS[k] for k in ("kubetune.io/modeldeployment", "kubetune.io/revision")}
            },
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [container],
                    "volumes": [{"name": "model", "hostPath": {"path": str(model_dir)}}],
                },
            },
        },
    }


def decoy_pod() -> dict[str, Any]:
    """Same port name and revision labels, but not managed by kubetune: never scraped."""
    labels = {k: v for k, v in LABELS.items() if k != "app.kubernetes.io/managed-by"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "decoy", "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "web",
                    "image": "python:3.11",
                    "command": ["python", "-c", DECOY],
                    "ports": [{"name": "http", "containerPort": PORT}],
                }
            ],
        },
    }


def ready_pods(kube: Kube, namespace: str, count: int, timeout: float) -> dict[str, str]:
    """Waits until exactly ``count`` pods of the Deployment exist, all Ready; name -> pod IP."""
    selector = f"app.kubernetes.io/managed-by=kubetune,kubetune.io/revision={REVISION}"  # not the decoy

    def ready() -> dict[str, str] | None:
        pods = kube.pods(namespace, selector)
        ok = {
            p["metadata"]["name"]: p["status"]["podIP"]
            for p in pods
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []
            )
        }
        return ok if len(pods) == count and len(ok) == count else None

    return wait_for(ready, timeout, f"{count} Ready TGI pods in {namespace}", interval=0.5)


def test_prometheus_discovers_tgi_pods_labels_them_by_revision_and_drops_removed_ones(
    kube: Kube, namespace: str, proms: dict[Discovery, Prometheus], tmp_path: Path
) -> None:
    model_dir = build_tiny_model(tmp_path / "tiny")
    kube.create_object(decoy_pod(), namespace)
    deployment = kube.create_object(tgi_deployment(model_dir, tmp_path / "mnt" / "model", 2), namespace)
    pods = ready_pods(kube, namespace, 2, timeout=240)
    for prom in proms.values():
        assert_scraped_with_kubetune_labels(prom, namespace, pods)

    # tgi_request_count appears with each pod's first request (as in TGI); the analysis' count
    # query counts a series born in its window from zero
    for ip in pods.values():  # a few requests per pod, straight to its IP
        for _ in range(3):
            body = {"inputs": "the support team", "parameters": {"max_new_tokens": 2}}
            assert requests.post(f"http://{ip}:{PORT}/generate", json=body, timeout=30).status_code == 200
    for prom in proms.values():
        assert_request_counts_by_revision(prom, namespace, set(pods))

    kube.patch(kube.path_of(deployment, namespace), {"spec": {"replicas": 1}})
    remaining = ready_pods(kube, namespace, 1, timeout=60)
    (removed,) = set(pods) - set(remaining)
    for prom in proms.values():
        prom.wait_up(namespace, remaining, deadline_s=30)
        prom.wait_targets(
            lambda targets: removed not in {t["labels"].get("pod") for t in targets},
            15,
            f"{prom.discovery}: pod {removed} to leave Prometheus' targets",
        )


def assert_scraped_with_kubetune_labels(prom: Prometheus, namespace: str, pods: dict[str, str]) -> None:
    """``up == 1`` for exactly ``pods`` (name -> IP), labelled as the canary analysis expects."""

    up = prom.wait_up(namespace, pods, deadline_s=30)
    for name, labels in up.items():
        assert labels["namespace"] == namespace
        assert labels["kubetune_io_revision"] == REVISION
        assert labels["kubetune_io_modeldeployment"] == MDEP
        assert labels["container"] == "tgi"
        assert labels["instance"] == f"{pods[name]}:{PORT}"
    scraped = {t["labels"].get("pod") for t in prom.targets()}
    assert "decoy" not in scraped, f"{prom.discovery}: unmanaged pod scraped: {scraped}"


def assert_request_counts_by_revision(prom: Prometheus, namespace: str, pods: set[str]) -> None:
    """Each pod's ``tgi_request_count`` reached 3 under the revision label, and the canary
    analysis' own request-count query selects them."""

    def counted() -> dict[str, float] | None:
        found = {
            labels["pod"]: value
            for labels, value in prom.series(f'tgi_request_count{{namespace="{namespace}"}}')
            if labels.get("kubetune_io_revision") == REVISION
        }
        return found if set(found) == pods and all(v >= 3 for v in found.values()) else None

    wait_for(counted, 15, f"{prom.discovery}: tgi_request_count >= 3 from pods {sorted(pods)}")
    count_query = engines.get("tgi").builtin_queries(namespace, "1m")[0].for_revision(REVISION)[1]
    total = wait_for(lambda: prom.client().query(count_query), 15, f"{prom.discovery}: {count_query} > 0")
    assert total is not None and total >= 3 * len(pods) - 1, (count_query, total)
