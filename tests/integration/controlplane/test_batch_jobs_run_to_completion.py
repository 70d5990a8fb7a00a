"""Batch Jobs go through controller-manager, scheduler and node agent, with real exit codes."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.testing import Cluster, wait_for
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(90)


def _job(name: str, code: str, *, backoff_limit: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", code]}
                    ],
                }
            },
        },
    }


def _job_condition(kube: Kube, namespace: str, name: str) -> str | None:
    job = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return str(cond["type"])
    return None


def _only_pod(kube: Kube, namespace: str, job: str) -> dict[str, Any]:
    pods = kube.pods(namespace, f"job-name={job}")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_job_running_a_python_one_liner_completes_with_exit_code_zero_and_log(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    kube.create_object(_job("hello", "print('hello from a job', 6 * 7)"), namespace)

    outcome = wait_for(lambda: _job_condition(kube, namespace, "hello"), 60, "job hello to finish")

    assert outcome == "Complete"
    pod = _only_pod(kube, namespace, "hello")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    log = cluster.container_log(namespace, pod["metadata"]["name"], "main").read_text()
    assert "hello from a job 42" in log
    kubectl_logs = cluster.kubectl("logs", "-n", namespace, "job/hello")
    assert "hello from a job 42" in kubectl_logs.stdout, kubectl_logs.stderr


def test_failing_job_reports_the_non_zero_exit_code(cluster: Cluster, kube: Kube, namespace: str) -> None:
    code = "import sys; print('about to fail', flush=True); sys.exit(3)"
    kube.create_object(_job("boom", code), namespace)

    outcome = wait_for(lambda: _job_condition(kube, namespace, "boom"), 60, "job boom to finish")

    assert outcome == "Failed"
    pod = _only_pod(kube, namespace, "boom")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert "about to fail" in cluster.container_log(namespace, pod["metadata"]["name"], "main").read_text()


def test_indexed_job_pods_see_their_completion_index(cluster: Cluster, kube: Kube, namespace: str) -> None:
    job = _job("indexed", "import os; print('index', os.environ['JOB_COMPLETION_INDEX'])")
    job["spec"] |= {"completionMode": "Indexed", "completions": 2, "parallelism": 2}
    kube.create_object(job, namespace)

    assert wait_for(lambda: _job_condition(kube, namespace, "indexed"), 60, "indexed job") == "Complete"

    seen = set()
    for pod in kube.pods(namespace, "job-name=indexed"):
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        log = cluster.container_log(namespace, pod["metadata"]["name"], "main").read_text()
        assert f"index {index}" in log
        seen.add(index)
    assert seen == {"0", "1"}
