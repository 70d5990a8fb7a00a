"""Container lifecycle on the node agent: init order, restarts, termination messages, bad images."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.testing import Cluster, wait_for
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(60)


def _status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return ((kube.pod(namespace, name) or {}).get("status")) or {}


def _finished(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (s := _status(kube, namespace, name)).get("phase") in ("Succeeded", "Failed") and s,
        30,
        f"pod {name} to finish",
    )


def test_init_containers_run_in_order_before_the_main_container(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    def step(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "image": "busybox",
            "command": ["sh", "-c", f"echo {name} >> /work/order"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        }

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ordered"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "work", "emptyDir": {}}],
            "initContainers": [step("first"), step("second")],
            "containers": [
                {**step("main"), "command": ["sh", "-c", "echo main >> /work/order; cat /work/order"]}
            ],
        },
    }
    kube.create_object(pod, namespace)

    status = _finished(kube, namespace, "ordered")

    assert status["phase"] == "Succeeded"
    assert cluster.container_log(namespace, "ordered", "main").read_text().split() == [
        "first",
        "second",
        "main",
    ]
    assert [s["state"]["terminated"]["exitCode"] for s in status["initContainerStatuses"]] == [0, 0]


def test_on_failure_restarts_the_container_and_counts_the_restart(kube: Kube, namespace: str) -> None:
    code = (
        "import os, sys\n"
        "if os.path.exists('/scratch/tried'): sys.exit(0)\n"
        "open('/scratch/tried', 'w').close(); sys.exit(7)\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "flaky"},
        "spec": {
            "restartPolicy": "OnFailure",
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11",
                    "command": ["python", "-c", code],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                }
            ],
        },
    }
    kube.create_object(pod, namespace)

    status = _finished(kube, namespace, "flaky")

    container = status["containerStatuses"][0]
    assert status["phase"] == "Succeeded"
    assert container["restartCount"] == 1
    assert container["lastState"]["terminated"]["exitCode"] == 7
    assert container["state"]["terminated"]["exitCode"] == 0


def test_termination_message_is_reported_from_the_termination_log(kube: Kube, namespace: str) -> None:
    code = "import sys; open('/dev/termination-log', 'w').write('dataset row 17 is not JSON'); sys.exit(2)"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "explains"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "python:3.11", "command": ["python", "-c", code]}],
        },
    }
    kube.create_object(pod, namespace)

    terminated = _finished(kube, namespace, "explains")["containerStatuses"][0]["state"]["terminated"]

    assert terminated["exitCode"] == 2
    assert terminated["message"] == "dataset row 17 is not JSON"


def test_an_image_with_no_local_mapping_waits_with_err_image_pull_naming_the_fix(
    kube: Kube, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unknown-image"},
        "spec": {"containers": [{"name": "main", "image": "example.com/nobody/nothing:1.0"}]},
    }
    kube.create_object(pod, namespace)

    def waiting() -> dict[str, Any] | None:
        statuses = _status(kube, namespace, "unknown-image").get("containerStatuses") or []
        state = statuses[0]["state"].get("waiting") if statuses else None
        return state if state and state["reason"] == "ErrImagePull" else None

    state = wait_for(waiting, 30, "ErrImagePull")
    assert "example.com/nobody/nothing:1.0" in state["message"]
    assert "ImageRule" in state["message"] and "agent.yaml" in state["message"]
    assert _status(kube, namespace, "unknown-image")["phase"] == "Pending"
