"""Deletion: garbage collection of a Job's pods, and SIGTERM -> grace period -> SIGKILL."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kubetune.testing import Cluster, procs, wait_for
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(90)

IGNORE_SIGTERM = """
import signal, sys, time
def on_term(signum, frame):
    print('got SIGTERM, ignoring it', flush=True)
signal.signal(signal.SIGTERM, on_term)
print('ready', flush=True)
while True:
    time.sleep(0.05)
"""


def _running_pid(kube: Kube, namespace: str, name: str) -> int | None:
    pod = kube.pod(namespace, name)
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    if not statuses or "running" not in statuses[0]["state"]:
        return None
    return int(statuses[0]["containerID"].removeprefix("kubetune://"))


def test_deleting_a_job_in_background_removes_its_pods_and_their_processes(
    kube: Kube, namespace: str
) -> None:
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "sleeper"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {"name": "main", "image": "busybox:1.36", "command": ["sleep", "300"]},
                    ],
                }
            }
        },
    }
    kube.create_object(job, namespace)
    pod = wait_for(lambda: kube.pods(namespace, "job-name=sleeper"), 30, "the Job's pod")[0]
    pid = wait_for(lambda: _running_pid(kube, namespace, pod["metadata"]["name"]), 30, "sleeper to run")
    assert procs.alive(pid)

    kube.delete(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/sleeper",
        body={"propagationPolicy": "Background"},
    )

    wait_for(
        lambda: not kube.pods(namespace, "job-name=sleeper"), 30, "the garbage collector to remove the pods"
    )
    assert not procs.alive(pid), "the pod object is gone but its process still runs"


def test_pod_ignoring_sigterm_is_killed_after_its_grace_period_not_before(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    grace = 3
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stubborn"},
        "spec": {
            "terminationGracePeriodSeconds": grace,
            "containers": [
                {"name": "main", "image": "python:3.11", "command": ["python", "-c", IGNORE_SIGTERM]}
            ],
        },
    }
    kube.create_object(pod, namespace)
    pid = wait_for(lambda: _running_pid(kube, namespace, "stubborn"), 30, "stubborn to run")
    log = cluster.container_log(namespace, "stubborn", "main")
    wait_for(lambda: "ready" in log.read_text(), 10, "the SIGTERM handler to be installed")

    start = time.monotonic()
    kube.delete(f"/api/v1/namespaces/{namespace}/pods/stubborn")
    wait_for(lambda: not procs.alive(pid), grace + 10, "the process to be killed", interval=0.02)
    elapsed = time.monotonic() - start

    print(f"killed {elapsed:.2f}s after deletion (grace {grace}s)")
    assert "got SIGTERM" in log.read_text(), "SIGTERM was not delivered first"
    assert grace - 0.2 <= elapsed <= grace + 2.0
    wait_for(lambda: kube.pod(namespace, "stubborn") is None, 10, "the pod object to be removed")
