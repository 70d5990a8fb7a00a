"""The webhook's answer to an AdmissionReview: allowed, or a 403 with one line per denial; a
SubjectAccessReview that fails refuses (never admit what was not checked)."""

from __future__ import annotations

from typing import Any, cast

from kubetune.clients import kube as kubeclient
from kubetune.controllers.admission import webhook
from kubetune.controllers.settings import Settings


class FakeKube:
    def __init__(self, granted: set[tuple[str, str, str]] | None = None, fail: bool = False) -> None:
        self.granted = granted or set()
        self.fail = fail
        self.asked: list[tuple[str, str, str, str, str]] = []

    def can(
        self, user_info: dict[str, Any], verb: str, resource: str, *, namespace: str, name: str = ""
    ) -> bool:
        self.asked.append((user_info["username"], namespace, verb, resource, name))
        if self.fail:
            raise kubeclient.ApiError(0, "cannot reach the API server")
        return (verb, resource, name) in self.granted


def request(operation: str = "CREATE", **spec: Any) -> dict[str, Any]:
    body = {"baseModel": {"uri": "hf://org/m"}, "dataset": {"uri": "https://d.example/x.jsonl"}, **spec}
    return {
        "uid": "u-1",
        "kind": {"group": "kubetune.io", "version": "v1alpha1", "kind": "FineTuneJob"},
        "namespace": "team-a",
        "operation": operation,
        "userInfo": {"username": "bob", "groups": ["team-a-devs", "system:authenticated"]},
        "object": {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "j"},
            "spec": body,
        },
    }


def review(req: dict[str, Any], kube: FakeKube) -> dict[str, Any]:
    return webhook.review(req, cast(kubeclient.Kube, kube), Settings())


def test_the_requesting_user_is_asked_about_in_the_requests_namespace() -> None:
    kube = FakeKube({("get", "secrets", "tok")})
    answer = review(request(dataset={"uri": "https://d.example/x.jsonl", "secretRef": {"name": "tok"}}), kube)
    assert answer == {"uid": "u-1", "allowed": True}
    assert kube.asked == [("bob", "team-a", "get", "secrets", "tok")]


def test_a_denial_is_a_403_with_one_line_per_missing_permission() -> None:
    req = request(
        dataset={"uri": "https://d.example/x.jsonl", "secretRef": {"name": "tok"}},
        output={"secretRef": {"name": "reg"}},
    )
    answer = review(req, FakeKube())
    assert answer["allowed"] is False and answer["uid"] == "u-1"
    assert answer["status"]["code"] == 403
    lines = answer["status"]["message"].splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["spec.dataset.secretRef", "spec.output.secretRef"]
    assert "bob may not get secrets/tok in namespace team-a" in lines[0]


def test_an_unanswered_access_review_refuses() -> None:
    req = request(dataset={"uri": "https://d.example/x.jsonl", "secretRef": {"name": "tok"}})
    answer = review(req, FakeKube(fail=True))
    assert answer["allowed"] is False
    assert "cannot check the references" in answer["status"]["message"]


def test_deletes_are_not_reviewed() -> None:
    kube = FakeKube()
    assert review(request("DELETE"), kube)["allowed"] is True
    assert kube.asked == []


def test_configuration_covers_create_and_update_of_the_main_resources_only() -> None:
    config = webhook.configuration(
        "kubetune-admission",
        {"url": "https://127.0.0.1:9443/validate"},
        failure_policy="Ignore",
        namespaces=["b", "a"],
    )
    (hook,) = config["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    (rule,) = hook["rules"]
    assert rule["resources"] == ["finetunejobs", "modeldeployments"]  # no */status: the operator's writes
    assert rule["operations"] == ["CREATE", "UPDATE"]
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["a", "b"]
    assert hook["sideEffects"] == "None"
