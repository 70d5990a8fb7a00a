"""Security level: the hostile tenant, played against real servers, processes and control plane.

Each test attempts something a namespace's user must not achieve through kubetune objects and
checks that it is refused or contained.

``admission`` serves the webhook exactly as ``kubetune operator run --webhook-port --webhook-url``
does (:class:`kubetune.controllers.admission.webhook.Webhook`): a self-signed certificate made by
the operator, and a ValidatingWebhookConfiguration the operator creates with a URL clientConfig
(the kube-apiserver runs on this machine, so 127.0.0.1 reaches it), scoped to the test's
namespace. ``users`` gives clients with client certificates from the test CA
(:func:`kubetune.testing.pki.client_cert`), so the API server sees another user than the admin.
``prometheus_binary`` and ``prom_label_proxy_binary`` find the real binaries the Prometheus
tests need and skip without them, unless ``KUBETUNE_REQUIRE_PROMETHEUS`` makes that an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from admission_helpers import KUBETUNE_OBJECTS, Admission, Obj, User, grant

from kubetune.clients import kube as kubeclient
from kubetune.testing import Cluster, CrdReport, prometheus, promlabelproxy
from kubetune.testing.kube import Kube


@pytest.fixture
def admission(cluster: Cluster, kubetune_crds: CrdReport, namespace: str) -> Iterator[Admission]:
    """The webhook serving (failure policy Fail) for ``namespace``; its configuration is deleted after."""
    assert {"finetunejobs.kubetune.io", "modeldeployments.kubetune.io"} <= set(kubetune_crds.installed)
    client = kubeclient.Kube.from_environment(str(cluster.kubeconfig))
    hook = Admission(client, namespace)
    hook.start()
    try:
        yield hook
    finally:
        hook.stop()
        cluster.kube.delete(
            f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{hook.name}"
        )
        client.close()


@pytest.fixture
def users(cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path) -> Callable[[str, list[Obj]], User]:
    """``users(name, extra_rules)``: a user who may manage kubetune objects in ``namespace``,
    plus ``extra_rules``."""

    def make(name: str, extra: list[Obj]) -> User:
        grant(kube, namespace, name, [KUBETUNE_OBJECTS, *extra])
        return User(cluster, name, tmp_path)

    return make


def _missing(why: str, require: str) -> None:
    if os.environ.get(require):
        pytest.fail(f"{require} is set but {why}", pytrace=False)
    pytest.skip(f"{why} (set {require}=1 to make this an error)")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The test Prometheus (Debian package ``prometheus``)."""
    why = prometheus.prometheus_available()
    if why is not None:
        _missing(why, "KUBETUNE_REQUIRE_PROMETHEUS")
    return prometheus.PROMETHEUS_BIN


@pytest.fixture(scope="session")
def prom_label_proxy_binary() -> str:
    """prom-label-proxy built from Go modules by hack/build-prom-label-proxy.sh."""
    binary = promlabelproxy.find_binary()
    if binary is None:
        _missing(
            "prom-label-proxy is not built (run hack/build-prom-label-proxy.sh)",
            "KUBETUNE_REQUIRE_PROMETHEUS",
        )
    assert binary is not None
    return binary
