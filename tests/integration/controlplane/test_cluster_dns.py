"""Pods find each other by name: Indexed Job pods behind a headless Service (torchrun's setup)."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.testing import Cluster, wait_for
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(60)

RESOLVE_PEER = """
import os, socket, time
index = int(os.environ['JOB_COMPLETION_INDEX'])
peer = f"peers-{1 - index}.workers"
deadline = time.time() + 20
while True:
    try:
        print('peer', peer, socket.gethostbyname(peer), flush=True)
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
print('fqdn', socket.getfqdn(), flush=True)
"""


def test_indexed_job_pods_resolve_each_other_through_a_headless_service(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "workers"},
            "spec": {"clusterIP": "None", "selector": {"job-name": "peers"}, "ports": [{"port": 29500}]},
        },
        namespace,
    )
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "peers"},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 2,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "subdomain": "workers",
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "python:3.11", "command": ["python", "-c", RESOLVE_PEER]}
                    ],
                }
            },
        },
    }
    kube.create_object(job, namespace)

    def finished() -> bool:
        conds = (kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/peers").get("status") or {}).get(
            "conditions"
        )
        return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds or [])

    wait_for(finished, 45, "job peers to finish")

    pods = {p["spec"]["hostname"]: p for p in kube.pods(namespace, "job-name=peers")}
    assert set(pods) == {"peers-0", "peers-1"}
    for hostname, pod in pods.items():
        log = cluster.container_log(namespace, pod["metadata"]["name"], "main").read_text()
        assert pod["status"]["phase"] == "Succeeded", log
        peer = "peers-1" if hostname == "peers-0" else "peers-0"
        assert f"peer {peer}.workers {pods[peer]['status']['podIP']}" in log
        assert f"fqdn {hostname}.workers.{namespace}.svc.cluster.local" in log
