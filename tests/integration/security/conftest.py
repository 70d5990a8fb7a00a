"""Fixtures for the hostile-tenant level: the operator's admission webhook on the real control
plane, and two users of a team namespace with different rights.

``admission`` serves the webhook exactly as ``kubetune operator run --webhook-port --webhook-url``
does (:class:`kubetune.controllers.admission.webhook.Webhook`): a self-signed certificate made by
the operator, and a ValidatingWebhookConfiguration the operator creates with a URL clientConfig
(the kube-apiserver runs on this machine, so 127.0.0.1 reaches it), scoped to the test's
namespace. ``users`` gives clients with client certificates from the test CA
(:func:`kubetune.testing.pki.client_cert`), so the API server sees another user than the admin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from admission_helpers import KUBETUNE_OBJECTS, Admission, Obj, User, grant

from kubetune.clients import kube as kubeclient
from kubetune.testing import Cluster, CrdReport
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
