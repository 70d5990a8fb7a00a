"""The chart's ``kueue`` section: a default LocalQueue for FineTuneJobs that name none."""

from __future__ import annotations

import yaml

from .conftest import template


def _operator_env(stdout: str) -> dict[str, str]:
    for doc in yaml.safe_load_all(stdout):
        if doc and doc.get("kind") == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            return {e["name"]: e.get("value", "") for e in container["env"]}
    raise AssertionError("no Deployment rendered")


def test_default_queue_reaches_the_operator_and_a_bad_name_is_refused(helm: str) -> None:
    assert _operator_env(template(helm).stdout)["KUBETUNE_KUEUE_DEFAULT_QUEUE"] == ""
    result = template(helm, "--set", "kueue.defaultQueueName=training")
    assert result.returncode == 0, result.stderr
    assert _operator_env(result.stdout)["KUBETUNE_KUEUE_DEFAULT_QUEUE"] == "training"
    refused = template(helm, "--set", "kueue.defaultQueueName=Team_A")
    assert refused.returncode != 0 and "at '/kueue/defaultQueueName'" in refused.stderr, refused.stderr


def test_the_operator_may_read_workloads_and_local_queues(helm: str) -> None:
    rules = [
        rule
        for doc in yaml.safe_load_all(template(helm).stdout)
        if doc and doc.get("kind") == "ClusterRole"
        for rule in doc.get("rules") or []
        if "kueue.x-k8s.io" in rule.get("apiGroups", [])
    ]
    verbs = {r: set(rule["verbs"]) for rule in rules for r in rule["resources"]}
    assert verbs == {"workloads": {"get", "list", "patch"}, "localqueues": {"get"}}, verbs
