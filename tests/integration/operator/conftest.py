"""Fixtures for the FineTuneJob operator level: the operator in-process, a tiny model on a PVC.

``operator`` runs ``kubetune.controllers.operator`` in this process through
``kopf.testing.KopfRunner``, watching only the test's namespace; the test fails if the operator
raised. ``data_pvc`` is a PersistentVolumeClaim of the test cluster (a host directory behind
the node agent's provisioner) holding a tiny random Llama and a small instruction dataset, so
FineTuneJobs use the cluster-shaped ``pvc://data/...`` URIs and the trainer runs on CPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftj_helpers import make_claim
from kopf.testing import KopfRunner

from kubetune.clients import kube as kubeclient
from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.settings import Settings
from kubetune.registry import devserver
from kubetune.testing import Cluster, CrdReport
from kubetune.testing.kube import Kube
from kubetune.testing.nodeagent.proxy import TcpForwarder

REPO = Path(__file__).resolve().parents[3]
QUICKSTART = REPO / "docs" / "examples" / "quickstart" / "train.jsonl"


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (trained tokenizer) and a 48-row instruction dataset, made once."""
    root = tmp_path_factory.mktemp("tiny-assets")
    rows = QUICKSTART.read_text().splitlines()[:48]
    (root / "train.jsonl").write_text("\n".join(rows) + "\n")
    broken = list(rows[:10])
    broken[6] = '{"instruction": "Which team?", "input": "no closing brace"'
    (root / "broken.jsonl").write_text("\n".join(broken) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kubetune.trainer.tiny",
            str(root / "model"),
            "--data",
            str(root / "train.jsonl"),
            "--hidden",
            "32",
            "--layers",
            "1",
            "--vocab-size",
            "512",
        ],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture
def data_pvc(kube: Kube, namespace: str, tiny_assets: Path) -> Path:
    """PVC ``data`` with model/ (tiny Llama), train.jsonl and broken.jsonl."""
    path = make_claim(kube, namespace, "data")
    shutil.copytree(tiny_assets, path, dirs_exist_ok=True)
    return path


@pytest.fixture
def adapter_registry(cluster: Cluster, tmp_path: Path) -> Iterator[str]:
    """Where FineTuneJobs push: ``oci://GATEWAY:PORT`` of a real plain-HTTP ``docker-registry``
    (on a cluster a job must push to a remote registry; a path would stay inside its pod). The
    registry listens on 127.0.0.1; pods live in their own network namespaces, so a forwarder on
    the pod network's gateway (on the host's ``lo``, reachable from pods and from this process
    alike) carries their connections to it."""
    gateway = cluster.network.gateway if cluster.network is not None else None
    if devserver.find_binary() is None or gateway is None:
        message = "needs the docker-registry binary (apt-get install docker-registry) and pod networking"
        if os.environ.get("KUBETUNE_REQUIRE_REGISTRY") == "1":
            pytest.fail(f"{message} (KUBETUNE_REQUIRE_REGISTRY=1 makes this an error)")
        pytest.skip(message)
    with devserver.DevRegistry(tmp_path / "registry") as server:
        host, port = server.host.rsplit(":", 1)
        forwarder = TcpForwarder((gateway, 0), (host, int(port))).start()
        try:
            yield "oci://{}:{}".format(*forwarder.address)
        finally:
            forwarder.close()


@pytest.fixture
def operator_settings(adapter_registry: str) -> Settings:
    """The operator's settings, as the chart sets them: jobs without ``spec.output.repository``
    push to ``<adapter_registry>/adapters/<namespace>/<job>``. The e2e level overrides this to
    add its Prometheus."""
    # the test registry (adapter_registry) talks plain HTTP: serving pods pull with --insecure
    return Settings(
        insecure_registries=(adapter_registry.removeprefix("oci://"),),
        default_registry=f"{adapter_registry}/adapters",
    )


@pytest.fixture
def operator(
    cluster: Cluster, kubetune_crds: CrdReport, namespace: str, operator_settings: Settings
) -> Iterator[kubetune_operator.Operator]:
    """The kubetune operator (both controllers), in-process, watching only ``namespace``."""
    assert {"finetunejobs.kubetune.io", "modeldeployments.kubetune.io"} <= set(kubetune_crds.installed)
    kube = kubeclient.Kube.from_environment(str(cluster.kubeconfig))
    op = kubetune_operator.build(operator_settings, kube, resync_seconds=1.0)
    with KopfRunner(
        ["run", "--standalone", "--namespace", namespace],
        registry=op.registry,
        settings=op.kopf_settings,
        timeout=60,
    ) as runner:
        yield op
    assert runner.exception is None, runner.exception
    kube.close()
