"""The API server's refusals of a Job's or ReplicaSet's pods, read into words to act on.

The texts are the ones kube-apiserver 1.37 writes (ResourceQuota, LimitRanger and PodSecurity
admission), as the Job controller records them in its FailedCreate Events.
"""

from __future__ import annotations

from kubetune.controllers import refusals

FIELDS = {
    "cpu": "spec.resources.cpu",
    "memory": "spec.resources.memory",
    "nvidia.com/gpu": "spec.resources.gpusPerNode",
}
POD = 'Error creating: pods "bot-train-x7k2p" is forbidden: '


def _read(text: str, count: int = 1) -> refusals.Refusal:
    return refusals.read(text, pods="the training pods", count=count, namespace="team-a", fields=FIELDS)


def test_a_quota_smaller_than_the_job_is_permanent_and_names_quota_resource_and_fix() -> None:
    got = _read(
        POD + "exceeded quota: team-quota, requested: requests.nvidia.com/gpu=2, "
        "used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=1"
    )
    assert got.kind == "QuotaExceeded" and got.permanent
    assert "ResourceQuota team-quota in namespace team-a allows requests.nvidia.com/gpu=1" in got.message
    assert "need requests.nvidia.com/gpu=2" in got.message
    assert "lower spec.resources.gpusPerNode or ask the platform team to raise the quota" in got.message


def test_a_quota_used_up_by_others_is_worth_waiting_for() -> None:
    got = _read(
        POD + "exceeded quota: team-quota, requested: limits.cpu=4,requests.cpu=4, "
        "used: limits.cpu=6,requests.cpu=6, limited: limits.cpu=8,requests.cpu=8"
    )
    assert got.kind == "QuotaExceeded" and not got.permanent
    assert got.message.startswith("waiting for ResourceQuota team-quota in namespace team-a")
    assert "requests.cpu (4 requested, 6 of 8 used)" in got.message


def test_pods_of_a_multi_node_job_count_together_against_the_quota() -> None:
    text = (
        POD + "exceeded quota: q, requested: requests.nvidia.com/gpu=2, "
        "used: requests.nvidia.com/gpu=2, limited: requests.nvidia.com/gpu=3"
    )
    assert not _read(text, count=1).permanent
    got = _read(text, count=2)
    assert got.permanent and "(2) need requests.nvidia.com/gpu=2 each" in got.message


def test_quantities_are_compared_as_amounts_not_text() -> None:
    text = (
        POD + "exceeded quota: q, requested: requests.memory=16Gi, "
        "used: requests.memory=20000Mi, limited: requests.memory=32Gi"
    )
    assert not _read(text).permanent
    assert _read(text.replace("limited: requests.memory=32Gi", "limited: requests.memory=8000Mi")).permanent


def test_a_quota_that_demands_an_amount_the_pods_do_not_set_is_permanent() -> None:
    got = _read(POD + "failed quota: storage: must specify limits.ephemeral-storage for: trainer")
    assert got.kind == "PodsRefused" and got.permanent
    assert "ResourceQuota storage" in got.message and "limits.ephemeral-storage for: trainer" in got.message
    assert "LimitRange default" in got.message


def test_a_limit_range_refusal_is_permanent_and_points_at_the_resources() -> None:
    got = _read(POD + "maximum cpu usage per Container is 2, but limit is 4")
    assert got.kind == "PodsRefused" and got.permanent
    assert "maximum cpu usage per Container is 2, but limit is 4" in got.message
    assert "spec.resources.cpu" in got.message


def test_a_pod_security_refusal_is_permanent() -> None:
    got = _read(
        POD + 'violates PodSecurity "restricted:latest": runAsNonRoot != true (pod or container '
        '"trainer" must set securityContext.runAsNonRoot=true)'
    )
    assert got.kind == "PodsRefused" and got.permanent
    assert got.message.startswith("the Pod Security admission of namespace team-a refuses the training pods")


def test_anything_else_is_reported_but_waited_out() -> None:
    got = _read(
        POD + 'error looking up service account team-a/bot-trainer: serviceaccount "bot-trainer" not found'
    )
    assert got.kind == "PodsNotCreated" and not got.permanent
    assert "serviceaccount" in got.message
