"""A namespace as a platform team governs it: quota, limits, the restricted Pod Security Standard.

The namespace carries a ResourceQuota on cpu, memory (requests and limits) and
``requests.nvidia.com/gpu``, a Pod-level LimitRange (no container defaults: a LimitRange of
type Container with a max would fill in every missing amount and hide a pod that sets none),
and ``pod-security.kubernetes.io/enforce: restricted``. The test API server runs its default
admission plugins (ResourceQuota, LimitRanger, PodSecurity) and the controller-manager's quota
controller computes usage, so a pod without requests, above the LimitRange or below the
standard is refused here as on a real cluster; the first test shows it. In that namespace a
FineTuneJob trains and registers its Adapter, and a ModelDeployment serves it, Healthy; a
FineTuneJob asking for more GPUs than the quota allows fails with the quota named.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ftj_helpers import FTJ, condition, dump, lora_job, phase_is
from mdep_helpers import MDEP, model_deployment, status_of
from mdep_helpers import dump as dump_mdep

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(480)
QUOTA = {
    "requests.cpu": "12",
    "limits.cpu": "12",
    "requests.memory": "48Gi",
    "limits.memory": "48Gi",
    "requests.nvidia.com/gpu": "2",
    "pods": "10",
}


@pytest.fixture
def governed(kube: Kube, namespace: str) -> str:
    """The test namespace with a ResourceQuota, a LimitRange and the restricted standard."""
    kube.patch(
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    kube.create(
        f"/api/v1/namespaces/{namespace}/resourcequotas",
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "team"}, "spec": {"hard": QUOTA}},
    )
    kube.create(
        f"/api/v1/namespaces/{namespace}/limitranges",
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "team"},
            "spec": {"limits": [{"type": "Pod", "max": {"cpu": "8", "memory": "32Gi"}}]},
        },
    )

    def counted() -> bool:
        quota = kube.get(f"/api/v1/namespaces/{namespace}/resourcequotas/team")
        return set((quota.get("status") or {}).get("used") or {}) >= set(QUOTA)

    wait_for(counted, 30, "the quota controller counting the namespace's usage")
    return namespace


def _pod(**resources: Any) -> dict[str, Any]:
    restricted = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container: dict[str, Any] = {"name": "c", "image": "busybox", "securityContext": restricted}
    if resources:
        container["resources"] = {"requests": resources, "limits": resources}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {"containers": [container]},
    }


def test_the_namespace_refuses_what_a_governed_cluster_refuses(kube: Kube, governed: str) -> None:
    pods = f"/api/v1/namespaces/{governed}/pods"
    # a pod that sets no amounts: the LimitRange has nothing to compare (and the quota would
    # refuse it next: its cpu and memory must be specified)
    with pytest.raises(Exception, match=re.escape("maximum cpu usage per Pod is 8.  No limit is specified")):
        kube.create(pods, _pod())
    with pytest.raises(Exception, match=re.escape("maximum cpu usage per Pod is 8")):
        kube.create(pods, _pod(cpu="10", memory="1Gi"))
    unrestricted = _pod(cpu="1", memory="1Gi")
    del unrestricted["spec"]["containers"][0]["securityContext"]
    with pytest.raises(Exception, match=r"violates PodSecurity .*restricted"):
        kube.create(pods, unrestricted)
    with pytest.raises(Exception, match="exceeded quota: team"):
        kube.create(pods, _pod(cpu="1", memory="1Gi", **{"nvidia.com/gpu": "3"}))


def _operator_pods_set_their_own_amounts(kube: Kube, namespace: str, selector: str) -> None:
    """Every container's cpu and memory came from the operator, none from a LimitRange."""
    found = kube.list(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)
    assert found, selector
    for pod in found:
        assert "kubernetes.io/limit-ranger" not in (pod["metadata"].get("annotations") or {}), pod["metadata"]
        for c in [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]:
            res = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(res.get("requests") or {}), (pod["metadata"]["name"], c["name"])
            assert res["requests"] == res["limits"], (pod["metadata"]["name"], c["name"])


def test_a_job_trains_and_its_adapter_is_served_healthy_in_the_governed_namespace(
    kube: Kube, governed: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    ns = governed
    kube.create(FTJ.format(ns=ns), lora_job("bot"))
    obj = wait_for(lambda: phase_is(kube, ns, "bot", "Succeeded", "Failed"), 240, "bot finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    _operator_pods_set_their_own_amounts(kube, ns, "kubetune.io/finetunejob=bot")

    kube.create(
        MDEP.format(ns=ns),
        model_deployment("bot", adapters=[{"name": "bot", "adapter": "bot"}]),
    )
    healthy: Callable[[], bool] = lambda: status_of(kube, ns, "bot").get("phase") == "Healthy"  # noqa: E731
    try:
        wait_for(healthy, 180, "bot Healthy in the governed namespace")
    except Exception:
        print(dump_mdep(kube, ns, "bot"))
        raise
    _operator_pods_set_their_own_amounts(kube, ns, "kubetune.io/modeldeployment=bot")


def test_a_job_that_needs_more_gpus_than_the_quota_allows_fails_naming_the_quota(
    kube: Kube, governed: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    ns = governed
    kube.create(FTJ.format(ns=ns), lora_job("big", resources={"gpusPerNode": 4}))
    obj = wait_for(lambda: phase_is(kube, ns, "big", "Succeeded", "Failed"), 180, "big refused")
    failed = condition(obj, "Failed")
    assert failed is not None and failed["reason"] == "QuotaExceeded", dump(obj)
    assert f"ResourceQuota team in namespace {ns} allows requests.nvidia.com/gpu=2" in failed["message"]
    assert "spec.resources.gpusPerNode" in failed["message"], failed
    scheduled = condition(obj, "Scheduled")
    assert scheduled is not None and scheduled["status"] == "False", dump(obj)
    # the training Job is deleted: the Job controller would otherwise retry for ever
    trainers = f"/apis/batch/v1/namespaces/{ns}/jobs"
    wait_for(
        lambda: not kube.list(trainers, labelSelector="kubetune.io/component=trainer"),
        30,
        "training Job deleted",
    )


def test_a_quota_too_small_for_the_preflight_fails_the_job_while_validating(
    kube: Kube, governed: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    """The preflight Job's own updates wake nothing while it runs; the Job controller's
    FailedCreate Event does."""
    ns = governed
    kube.create(
        f"/api/v1/namespaces/{ns}/resourcequotas",
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "tiny"},
            "spec": {"hard": {"requests.cpu": "500m"}},
        },
    )
    wait_for(
        lambda: (kube.get(f"/api/v1/namespaces/{ns}/resourcequotas/tiny").get("status") or {}).get("used"),
        30,
        "quota tiny counted",
    )
    kube.create(FTJ.format(ns=ns), lora_job("small"))
    obj = wait_for(lambda: phase_is(kube, ns, "small", "Succeeded", "Failed"), 120, "small refused")
    failed = condition(obj, "Failed")
    assert failed is not None and failed["reason"] == "QuotaExceeded", dump(obj)
    assert f"ResourceQuota tiny in namespace {ns} allows requests.cpu=500m" in failed["message"]
    assert "resourceDefaults.preflight.cpu" in failed["message"], failed
    assert obj["status"].get("preflight") is None
    preflights = f"/apis/batch/v1/namespaces/{ns}/jobs"
    wait_for(
        lambda: not kube.list(preflights, labelSelector="kubetune.io/component=preflight"),
        30,
        "preflight deleted",
    )
