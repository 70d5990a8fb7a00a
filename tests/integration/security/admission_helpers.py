"""Helpers of the hostile-tenant level (imported by its conftest and tests): the operator's
admission webhook for one namespace, users by client certificate, Roles for them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from kubetune.clients import kube as kubeclient
from kubetune.controllers.admission import webhook
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster, pki
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
        self.wait_enforced()
        return self.server

    def wait_enforced(self, deadline_s: float = 30.0) -> None:
        """Until the API server calls the webhook: it picks up a new ValidatingWebhookConfiguration
        from its informer a moment after the create, and a test must not race that. Probes with
        a server-side dry run of an object only the webhook refuses (a gate metric not measured)."""
        probe = {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "admission-probe"},
            "spec": {
                "baseModel": {"uri": "hf://org/model"},
                "dataset": {"uri": "https://data.example/train.jsonl"},
                "evaluation": {"metrics": ["loss"], "gate": {"metric": "rougeL"}},
            },
        }
        url = kubeclient.path("kubetune.io/v1alpha1", "FineTuneJob", self.namespace)
        end = time.monotonic() + deadline_s
        while True:
            try:
                self.kube.request("POST", url, body=probe, query={"dryRun": "All"})
            except kubeclient.ApiError as exc:
                if exc.status in (400, 403) and "gate" in exc.message:
                    return
                if time.monotonic() > end:
                    raise
            if time.monotonic() > end:
                raise TimeoutError(f"the API server did not call webhook {self.name} within {deadline_s:g}s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


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
