"""Fixtures for the hostile-tenant level: the operator's admission webhook on the real control
plane, and two users of a team namespace with different rights.

``admission`` serves the webhook exactly as ``kubetune operator run --webhook-port --webhook-url``
does (:class:`kubetune.controllers.admission.webhook.Webhook`): a self-signed certificate made by
the operator, and a ValidatingWebhookConfiguration the operator creates with a URL clientConfig
(the kube-apiserver runs on this machine, so 127.0.0.1 reaches it), scoped to the test's
namespace. ``as_user`` gives a client with a client certificate from the test CA
(:func:`kubetune.testing.pki.client_cert`), so the API server sees another user than the admin.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune.clients import kube as kubeclient
from kubetune.controllers.admission import webhook
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster, CrdReport, pki
from kubetune.testing.cluster import free_port
from kubetune.testing.kube import Kube

Obj = dict[str, Any]
TRAINER_IMAGE = Settings().trainer_image


class Admission:
    """The operator's webhook for one namespace; can be stopped and started again."""

    def __init__(self, kube: kubeclient.Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.port = free_port()
        self.name = f"kubetune-admission-{namespace}"
        self.server: webhook.Webhook | None = None

    def start(self, failure_policy: webhook.FailurePolicy = "Fail") -> webhook.Webhook:
        options = webhook.Options(
            host="127.0.0.1",
            port=self.port,
            url=f"https://127.0.0.1:{self.port}{webhook.PATH}",
            name=self.name,
            failure_policy=failure_policy,
            namespaces=(self.namespace,),
        )
        self.server = webhook.Webhook(self.kube, Settings(), options).start()
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


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


def grant(kube: Kube, namespace: str, user: str, rules: list[Obj]) -> None:
    """A Role with ``rules`` bound to ``user`` in ``namespace``."""
    kube.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": user},
            "rules": rules,
        },
    )
    kube.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


KUBETUNE_OBJECTS: Obj = {
    "apiGroups": ["kubetune.io"],
    "resources": ["finetunejobs", "modeldeployments"],
    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
}


class User:
    """Someone other than the admin: a client certificate, a kubeconfig and REST/kubectl access."""

    def __init__(self, cluster: Cluster, name: str, directory: Path) -> None:
        self.name = name
        cert, key = pki.client_cert(cluster.pki, name)
        self.kubeconfig = pki.kubeconfig(
            directory / f"{name}.kubeconfig",
            cluster.server,
            cluster.pki.ca_crt.read_bytes(),
            user=name,
            cert_pem=cert,
            key_pem=key,
        )
        self.kube = Kube.from_kubeconfig(self.kubeconfig)
        self._kubectl = str(cluster.binaries.kubectl) if cluster.binaries else "kubectl"

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def users(cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path) -> Callable[[str, list[Obj]], User]:
    """``users(name, extra_rules)``: a user who may manage kubetune objects in ``namespace``,
    plus ``extra_rules``."""

    def make(name: str, extra: list[Obj]) -> User:
        grant(kube, namespace, name, [KUBETUNE_OBJECTS, *extra])
        return User(cluster, name, tmp_path)

    return make
