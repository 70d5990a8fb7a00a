"""The scheduler accounts ``nvidia.com/gpu`` against the agent's GPU nodes."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.testing import Cluster, wait_for
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(60)


def _gpu_pod(name: str, gpus: int, code: str = "import time; time.sleep(300)") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11",
                    "command": ["python", "-c", code],
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
        },
    }


def test_pod_asking_for_more_gpus_than_any_node_has_stays_pending_with_failed_scheduling(
    kube: Kube, namespace: str
) -> None:
    kube.create_object(_gpu_pod("greedy", gpus=8), namespace)

    def failed_scheduling() -> dict[str, Any] | None:
        return next((e for e in kube.events(namespace, "greedy") if e["reason"] == "FailedScheduling"), None)

    event = wait_for(failed_scheduling, 30, "a FailedScheduling event for pod greedy")

    assert "Insufficient nvidia.com/gpu" in event["message"], event["message"]
    pod = kube.pod(namespace, "greedy")
    assert pod is not None
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")


def test_pod_asking_for_gpus_lands_on_a_gpu_node_and_sees_its_devices(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    pod = _gpu_pod(
        "gpu-user", gpus=2, code="import os; print('devices', os.environ['NVIDIA_VISIBLE_DEVICES'])"
    )
    pod["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    kube.create_object(pod, namespace)

    done = wait_for(
        lambda: (p := kube.pod(namespace, "gpu-user")) and p["status"].get("phase") == "Succeeded" and p,
        30,
        "pod gpu-user to succeed",
    )

    node = kube.get(f"/api/v1/nodes/{done['spec']['nodeName']}")
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    log = cluster.container_log(namespace, "gpu-user", "main").read_text()
    devices = log.split("devices", 1)[1].split()[0].split(",")
    assert len(set(devices)) == 2, log
