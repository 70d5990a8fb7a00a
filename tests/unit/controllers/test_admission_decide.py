"""The admission decision: every reference an object names is checked against what its author
may do, and invalid objects are refused with the messages of ``kubetune validate``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubetune.controllers.admission import decide

TRAINER = "ghcr.io/kubetune/trainer:0.1.0"


def job(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "baseModel": {"uri": "hf://org/model"},
        "dataset": {"uri": "hf://datasets/org/data", "format": "instruction"},
    }
    base.update(spec)
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "j", "namespace": "team-a"},
        "spec": base,
    }


def deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"baseModel": {"uri": "hf://org/model"}}
    base.update(spec)
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "d", "namespace": "team-a"},
        "spec": base,
    }


class Rights:
    """An ``allowed`` callback from a set of (verb, resource, name); records what was asked."""

    def __init__(self, *granted: tuple[str, str, str]) -> None:
        self.granted = set(granted)
        self.asked: list[tuple[str, str, str]] = []

    def __call__(self, verb: str, resource: str, name: str) -> bool:
        self.asked.append((verb, resource, name))
        return (verb, resource, name) in self.granted


def denials(obj: dict[str, Any], rights: Rights, old: dict[str, Any] | None = None) -> list[str]:
    return decide.denials(obj, user="alice", allowed=rights, trainer_image=TRAINER, old=old)


def test_every_reference_of_a_finetunejob_is_asked_about() -> None:
    obj = job(
        baseModel={"uri": "pvc://models/llama", "secretRef": {"name": "hf"}},
        dataset={
            "uri": "configmap://data/train.jsonl",
            "validationUri": "pvc://evals/val.jsonl",
            "secretRef": {"name": "ds", "key": "k"},
        },
        output={"secretRef": {"name": "reg", "key": ".dockerconfigjson"}},
        checkpointStorage={"claimName": "ckpt"},
        image="example.com/mine:1",
    )
    rights = Rights()
    lines = denials(obj, rights)
    assert set(rights.asked) == {
        ("get", "persistentvolumeclaims", "models"),
        ("get", "secrets", "hf"),
        ("get", "configmaps", "data"),
        ("get", "persistentvolumeclaims", "evals"),
        ("get", "secrets", "ds"),
        ("get", "secrets", "reg"),
        ("get", "persistentvolumeclaims", "ckpt"),
        ("create", "pods", ""),
    }
    assert [line.split(":", 1)[0] for line in lines] == [
        "spec.baseModel.uri",
        "spec.baseModel.secretRef",
        "spec.dataset.uri",
        "spec.dataset.validationUri",
        "spec.dataset.secretRef",
        "spec.output.secretRef",
        "spec.checkpointStorage.claimName",
        "spec.image",
    ]


def test_a_secret_the_user_cannot_read_is_refused_with_the_field_and_the_permission() -> None:
    obj = job(dataset={"uri": "https://attacker.example/x.jsonl", "secretRef": {"name": "db-creds"}})
    assert denials(obj, Rights()) == [
        "spec.dataset.secretRef: alice may not get secrets/db-creds in namespace team-a; "
        "reference only secrets you can read yourself"
    ]


def test_a_secret_the_user_can_read_is_admitted() -> None:
    obj = job(dataset={"uri": "https://data.example/x.jsonl", "secretRef": {"name": "db-creds"}})
    assert denials(obj, Rights(("get", "secrets", "db-creds"))) == []


def test_a_custom_image_needs_create_pods_and_the_trainer_image_does_not() -> None:
    assert denials(job(image=TRAINER), Rights()) == []
    (line,) = denials(job(image="attacker.example/miner:1"), Rights())
    assert line.startswith("spec.image: alice may not create pods in namespace team-a")
    assert denials(job(image="attacker.example/miner:1"), Rights(("create", "pods", ""))) == []


def test_a_modeldeployment_base_model_secret_claim_and_custom_runtime_image_are_checked() -> None:
    obj = deployment(
        baseModel={"uri": "pvc://models/llama", "secretRef": {"name": "hf"}},
        runtime={"image": "example.com/tgi:evil"},
    )
    lines = denials(obj, Rights(("get", "persistentvolumeclaims", "models")))
    assert [line.split(":", 1)[0] for line in lines] == ["spec.baseModel.secretRef", "spec.runtime.image"]
    assert denials(deployment(), Rights()) == []


def test_remote_sources_name_nothing_in_the_cluster() -> None:
    rights = Rights()
    assert denials(job(baseModel={"uri": "oci://r.example/m@sha256:" + "a" * 64}), rights) == []
    assert rights.asked == []


def test_an_update_that_keeps_the_spec_is_not_checked_again() -> None:
    """The operator patches annotations and finalizers of objects whose secrets it may not read."""
    old = job(dataset={"uri": "https://data.example/x.jsonl", "secretRef": {"name": "s"}})
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"kubetune.io/promote": "true"}
    rights = Rights()
    assert denials(new, rights, old=old) == []
    assert rights.asked == []


def test_an_invalid_stored_object_can_still_lose_its_finalizer() -> None:
    """Admitted while the webhook was down (Ignore) or before it existed: metadata-only updates
    (the operator removing its finalizer on delete) must not be refused by today's rules."""
    old = job(evaluation={"metrics": ["loss"], "gate": {"metric": "rougeL"}})
    old["metadata"]["finalizers"] = ["kubetune.io/finalizer"]
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    assert decide.problems(new)
    assert denials(new, Rights(), old=old) == []


def test_an_update_that_changes_the_spec_checks_every_reference() -> None:
    old = job(dataset={"uri": "https://data.example/x.jsonl", "secretRef": {"name": "s"}})
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    (line,) = denials(new, Rights(), old=old)
    assert line.startswith("spec.dataset.secretRef:")


def test_a_token_over_plain_http_is_refused_whoever_asks() -> None:
    obj = job(dataset={"uri": "http://data.example/x.jsonl", "secretRef": {"name": "s"}})
    (line,) = denials(obj, Rights(("get", "secrets", "s")))
    assert line.startswith("spec.dataset.secretRef: the token would be sent over plain http://")
    obj = job(
        dataset={
            "uri": "https://data.example/x.jsonl",
            "validationUri": "http://data.example/v.jsonl",
            "secretRef": {"name": "s"},
        }
    )
    assert denials(obj, Rights(("get", "secrets", "s")))
    # nor registry credentials to a plain-HTTP registry
    obj = job(output={"insecure": True, "secretRef": {"name": "reg"}})
    (line,) = denials(obj, Rights(("get", "secrets", "reg")))
    assert line.startswith("spec.output.insecure: the registry credentials of spec.output.secretRef")
    assert denials(job(output={"insecure": True}), Rights()) == []
    # without a token a plain-http public file is fine
    assert denials(job(dataset={"uri": "http://data.example/x.jsonl"}), Rights()) == []


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            job(evaluation={"metrics": ["loss"], "gate": {"metric": "rougeL"}}),
            "spec.evaluation.gate.metric is 'rougeL' but spec.evaluation.metrics",
        ),
        (
            deployment(adapters=[{"name": "a", "adapter": "x"}, {"name": "a", "adapter": "y"}]),
            "spec.adapters[1].name 'a' is used twice",
        ),
        (
            deployment(rollout={"analysis": {"interval": "60s", "window": "30s"}}),
            "spec.rollout.analysis.window (30s) is shorter than interval (60s)",
        ),
    ],
)
def test_cross_field_rules_are_refused_with_the_validate_message(obj: dict[str, Any], message: str) -> None:
    rights = Rights()
    lines = denials(obj, rights)
    assert lines == decide.problems(obj)
    assert any(message in line for line in lines), lines
    assert rights.asked == []  # nothing is asked about an object the operator would refuse anyway


def test_status_written_by_the_operator_is_not_validated_as_the_users() -> None:
    obj = job()
    obj["status"] = {"phase": "Training", "somethingNew": 1}
    assert denials(obj, Rights()) == []
