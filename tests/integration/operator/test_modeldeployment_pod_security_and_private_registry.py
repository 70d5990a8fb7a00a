"""ModelDeployment pods a real cluster admits and that pull from a registry with htpasswd auth.

The namespace is labelled ``pod-security.kubernetes.io/enforce: restricted``, so the test API
server's built-in PodSecurity admission refuses any pod of the revision that does not meet the
``restricted`` standard (the ReplicaSet then never gets a pod). The adapter lives in a real
``docker-registry`` that demands basic auth (htpasswd); the pods pull it with the credentials of
the Secret named by ``spec.registrySecret``. Healthy, and an answer that differs from the base
model's, means the pods were admitted, pulled with the Secret, and loaded the adapter.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mdep_helpers import (
    MDEP,
    create_adapter,
    deployments,
    dump,
    generate,
    make_adapter_dir,
    model_deployment,
    status_of,
)

from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.settings import Settings
from kubetune.registry import auth, devserver, store, transfer
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube
from kubetune.testing.nodeagent.proxy import TcpForwarder
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(420)
USER, PASSWORD = "kubetune-ci", "correct-horse-battery"


@pytest.fixture
def private_registry(cluster: Cluster, tmp_path: Path) -> Iterator[str]:
    """``oci://GATEWAY:PORT`` of a plain-HTTP docker-registry with htpasswd basic auth, reachable
    from pods through a forwarder on the pod network's gateway."""
    gateway = cluster.network.gateway if cluster.network is not None else None
    htpasswd = shutil.which("htpasswd")
    if devserver.find_binary() is None or htpasswd is None or gateway is None:
        pytest.skip("needs the docker-registry and apache2-utils (htpasswd) Debian packages")
    line = subprocess.run(
        [htpasswd, "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout
    workdir = tmp_path / "registry"
    workdir.mkdir()
    (workdir / "htpasswd").write_text(line.strip() + "\n")
    with devserver.DevRegistry(workdir, htpasswd=workdir / "htpasswd") as server:
        host, port = server.host.rsplit(":", 1)
        forwarder = TcpForwarder((gateway, 0), (host, int(port))).start()
        try:
            yield "oci://{}:{}".format(*forwarder.address)
        finally:
            forwarder.close()


@pytest.fixture
def operator_settings(adapter_registry: str, private_registry: str) -> Settings:
    """As the integration level's, with the private registry among the plain-HTTP hosts too
    (plain HTTP is a list of hosts, never every host)."""
    hosts = tuple(r.removeprefix("oci://") for r in (adapter_registry, private_registry))
    return Settings(insecure_registries=hosts, default_registry=f"{adapter_registry}/adapters")


@pytest.fixture
def restricted(kube: Kube, namespace: str) -> str:
    """The test namespace, enforcing the restricted Pod Security Standard."""
    kube.patch(
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    return namespace


def _ready_pod_ip(kube: Kube, namespace: str, rev: str) -> str | None:
    pods = kube.list(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"kubetune.io/revision={rev}")
    for p in pods:
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
            return str(p["status"]["podIP"])
    return None


def test_restricted_namespace_admits_the_pods_and_they_pull_with_the_registry_secret(
    kube: Kube,
    restricted: str,
    data_pvc: Path,
    tiny_assets: Path,
    tmp_path: Path,
    private_registry: str,
    operator: kubetune_operator.Operator,
) -> None:
    ns = restricted
    directory = make_adapter_dir(tiny_assets / "model", tmp_path / "working", working=True)
    creds = auth.Credentials(username=USER, password=PASSWORD)
    ref = transfer.push_directory(
        directory,
        f"{private_registry}/adapters/bot-private:v1",
        {"baseModel": {"uri": "pvc://data/model"}, "method": "lora"},
        options=store.Options(insecure=True, credentials=creds),
    )
    create_adapter(kube, ns, "bot-private", ref)
    server = private_registry.removeprefix("oci://")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = {"auths": {server: {"auth": token}}}
    kube.create(
        f"/api/v1/namespaces/{ns}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
        },
    )
    kube.create(
        MDEP.format(ns=ns),
        model_deployment(
            "bot",
            adapters=[{"name": "bot", "adapter": "bot-private"}],
            registrySecret={"name": "regcred"},
        ),
    )

    def healthy() -> str | None:
        st = status_of(kube, ns, "bot")
        return st.get("stableRevision") if st.get("phase") == "Healthy" else None

    try:
        rev = wait_for(healthy, 240, "bot Healthy with its adapter from the private registry")
    except Exception:
        print(dump(kube, ns, "bot"))
        events = kube.list(f"/api/v1/namespaces/{ns}/events")
        print("\n".join(f"{e.get('reason')}: {e.get('message')}" for e in events[-20:]))
        raise
    assert set(deployments(kube, ns, "bot")) == {rev}
    ip = wait_for(lambda: _ready_pod_ip(kube, ns, rev), 30, "a ready pod")
    tuned = generate(ip, "the support team", adapter="bot")["generated_text"]
    base = generate(ip, "the support team")["generated_text"]
    assert tuned != base


def test_a_pod_spec_below_the_restricted_standard_is_refused_here(kube: Kube, restricted: str) -> None:
    """The check above is real: this API server enforces the label (PodSecurity admission is on)."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]},
    }
    with pytest.raises(Exception, match="restricted"):
        kube.create(f"/api/v1/namespaces/{restricted}/pods", body)
