"""The Kueue the queueing tests run is the real one, webhooks included: its defaulting webhook
suspends a queued Job at creation, its validating webhook refuses a bad ClusterQueue, and its
controller makes a Workload for the Job and admits it within quota."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import KUEUE

from kubetune.testing.kube import Kube, is_status
from kubetune.testing.waiting import wait_for


def _job(name: str, queue: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"kueue.x-k8s.io/queue-name": queue}},
        "spec": {
            # not suspended: Kueue's mutating webhook must suspend it
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "command": ["true"],
                            "resources": {
                                "requests": {"cpu": "100m", "nvidia.com/gpu": 1},
                                "limits": {"nvidia.com/gpu": 1},
                            },
                        }
                    ],
                }
            }
        },
    }


def test_kueue_webhooks_and_controller_run_against_the_test_cluster(
    kube: Kube, namespace: str, queues: Callable[..., str]
) -> None:
    cq = queues("team", gpus=1)
    created = kube.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", _job("probe", "team"))
    assert created["spec"]["suspend"] is True, created["spec"]  # the mutating webhook ran

    def workload() -> dict[str, Any] | None:
        items = kube.list(f"{KUEUE}/namespaces/{namespace}/workloads")
        admitted = [w for w in items if (w.get("status") or {}).get("admission")]
        return admitted[0] if admitted else None

    wl = wait_for(workload, 60, "the probe Job's Workload admitted")
    assert wl["status"]["admission"]["clusterQueue"] == cq
    job = wait_for(
        lambda: (
            (j := kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/probe"))["spec"]["suspend"] is False
            and j
        ),
        30,
        "Kueue to unsuspend the admitted Job",
    )
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team"

    bad = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": f"bad-{namespace}"[:60]},
        "spec": {
            "resourceGroups": [
                {
                    "coveredResources": ["cpu"],
                    "flavors": [
                        {
                            "name": "default-flavor",
                            "resources": [{"name": "cpu", "nominalQuota": 1, "borrowingLimit": 1}],
                        }
                    ],
                }
            ]
        },
    }
    with pytest.raises(Exception) as refused:
        kube.create(f"{KUEUE}/clusterqueues", bad)
    assert is_status(refused.value, 422, 400), refused.value
    assert "borrowingLimit" in str(refused.value) or "cohort" in str(refused.value), refused.value
