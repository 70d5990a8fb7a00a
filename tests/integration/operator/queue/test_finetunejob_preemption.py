"""Kueue taking GPUs back on the real control plane: a high-priority job preempts a running
low-priority one, which checkpoints on SIGTERM, waits Queued, and resumes from that
checkpoint; a user suspend of a queued job goes through Kueue; a two-node job is admitted as
one unit, never one pod of two.

Checkpoints go to a PVC so the test can read the complete ones on the host. Training lengths
come from the spec's own knobs (epochs, checkpointEverySteps), never from sleeps.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import KUEUE
from ftj_helpers import FTJ, child_names, condition, dump, get_ftj, make_claim, phase_is
from queue_helpers import TRAINER, admitted, gpu_job, queued

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

# ~10 steps per epoch on the tiny model
LONGER = {"epochs": 8, "batchSize": 4, "maxSeqLength": 256, "learningRate": 0.01}
# The preempted job must still be training when the high-priority job's preflight (~10-20 s) has
# passed: 80 steps took 16 s on a quiet machine and finished first, so it gets 400.
PREEMPTIBLE = {**LONGER, "epochs": 40}


def _at_step(kube: Kube, namespace: str, name: str, step: int) -> dict[str, Any] | None:
    obj = get_ftj(kube, namespace, name)
    return obj if ((obj.get("status") or {}).get("progress") or {}).get("step", 0) >= step else None


def _complete_checkpoints(root: Path) -> list[int]:
    return sorted(
        int(p.name.removeprefix("step-")) for p in root.glob("step-*") if (p / "COMPLETE").is_file()
    )


def _workload(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    train = kube.get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{child_names(kube, namespace, name)['train']}"
    )
    found = kube.list(
        f"{KUEUE}/namespaces/{namespace}/workloads",
        labelSelector=f"kueue.x-k8s.io/job-uid={train['metadata']['uid']}",
    )
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def priorities(kube: Kube) -> Iterator[dict[str, str]]:
    """PriorityClasses low (100) and high (1000), unique to the test."""
    tag = uuid.uuid4().hex[:5]
    made = {}
    for level, value in (("low", 100), ("high", 1000)):
        name = f"kt-{level}-{tag}"
        kube.create(
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
            },
        )
        made[level] = name
    yield made
    for name in made.values():
        kube.delete(f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}")


def test_high_priority_job_preempts_a_running_one_which_checkpoints_waits_and_resumes_to_the_same_step_count(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    queues: Callable[..., str],
    priorities: dict[str, str],
    operator: kubetune_operator.Operator,
) -> None:
    queues("team", gpus=1, preemption={"withinClusterQueue": "LowerPriority"})
    checkpoints = make_claim(kube, namespace, "ckpt")
    low = gpu_job(
        "low",
        "team",
        resources={"priorityClassName": priorities["low"]},
        hyperparameters=PREEMPTIBLE,
        checkpointEverySteps=10,
        checkpointStorage={"claimName": "ckpt"},
    )
    kube.create(FTJ.format(ns=namespace), low)
    wait_for(lambda: _at_step(kube, namespace, "low", 13), 240, "low past step 13")

    kube.create(
        FTJ.format(ns=namespace), gpu_job("high", "team", resources={"priorityClassName": priorities["high"]})
    )

    def evicted() -> dict[str, Any] | None:
        obj = queued(kube, namespace, "low")
        if obj is None or kube.pods(namespace, TRAINER.format(name="low")):
            return None
        return obj if condition(obj, "Queued")["reason"] == "Evicted" else None

    obj = wait_for(evicted, 180, "low evicted by Kueue, Queued again with its trainer pod gone")
    assert obj["status"]["queue"]["evictions"] >= 1, dump(obj)
    assert "Preempted" in condition(obj, "Queued")["message"] + condition(obj, "Training")["message"], dump(
        obj
    )
    wl = _workload(kube, namespace, "low")
    assert any(
        c["type"] == "Evicted" and c["reason"] == "Preempted" for c in wl["status"]["conditions"]
    ) or any(
        e.get("reason") == "Preempted"
        for e in (wl["status"].get("schedulingStats") or {}).get("evictions") or []
    ), wl["status"]
    # SIGTERM made the trainer checkpoint the step it had reached, past the last periodic one
    steps = _complete_checkpoints(checkpoints / "low")
    stopped_at = steps[-1]
    assert stopped_at >= obj["status"]["progress"]["step"] >= 13, (steps, dump(obj))
    total = obj["status"]["progress"]["totalSteps"]
    assert stopped_at < total, (steps, dump(obj))

    obj = wait_for(lambda: phase_is(kube, namespace, "high", "Succeeded", "Failed"), 300, "high finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    obj = wait_for(lambda: phase_is(kube, namespace, "low", "Succeeded", "Failed"), 600, "low finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    # resumed from the SIGTERM checkpoint, and trained to the end: the step count of an
    # uninterrupted run (the trainer's totalSteps for this data and these hyperparameters)
    assert f"resumed from checkpoint at step {stopped_at}" in condition(obj, "Training")["message"], dump(obj)
    assert obj["status"]["progress"]["step"] == total, dump(obj)
    assert obj["status"]["attempts"] == 1, dump(obj)  # an eviction is not a failed attempt
    wanted = {"Evicted", "Admitted", "PhaseQueued", "PhaseSucceeded"}
    wait_for(lambda: wanted <= {e["reason"] for e in kube.events(namespace, "low")}, 30, f"events {wanted}")


def test_user_suspend_of_a_queued_job_goes_through_kueue_and_resume_continues_from_the_checkpoint(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    queues: Callable[..., str],
    operator: kubetune_operator.Operator,
) -> None:
    queues("team", gpus=1)
    checkpoints = make_claim(kube, namespace, "ckpt")
    body = gpu_job(
        "pausable",
        "team",
        hyperparameters=LONGER,
        checkpointEverySteps=10,
        checkpointStorage={"claimName": "ckpt"},
    )
    kube.create(FTJ.format(ns=namespace), body)
    wait_for(lambda: _at_step(kube, namespace, "pausable", 13), 240, "pausable past step 13")

    kube.patch(FTJ.format(ns=namespace) + "/pausable", {"spec": {"suspend": True}})

    def suspended() -> dict[str, Any] | None:
        if kube.pods(namespace, TRAINER.format(name="pausable")):
            return None
        obj = get_ftj(kube, namespace, "pausable")
        cond = condition(obj, "Suspended")
        return (
            obj
            if obj["status"]["phase"] == "Suspended" and cond and "GPUs freed" in cond["message"]
            else None
        )

    obj = wait_for(suspended, 120, "pausable suspended, its trainer pod gone")
    # one owner: the operator deactivated the Workload; Kueue evicted it and suspended the Job
    assert _workload(kube, namespace, "pausable")["spec"]["active"] is False
    stopped_at = _complete_checkpoints(checkpoints / "pausable")[-1]
    assert stopped_at >= 13, dump(obj)
    # Kueue does not admit it again on its own while it stays suspended
    job = kube.get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{child_names(kube, namespace, 'pausable')['train']}"
    )
    assert job["spec"]["suspend"] is True, job["spec"]

    kube.patch(FTJ.format(ns=namespace) + "/pausable", {"spec": {"suspend": False}})
    obj = wait_for(
        lambda: phase_is(kube, namespace, "pausable", "Succeeded", "Failed"), 300, "pausable finished"
    )
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    assert _workload(kube, namespace, "pausable")["spec"].get("active", True) is True
    assert f"resumed from checkpoint at step {stopped_at}" in condition(obj, "Training")["message"], dump(obj)
    assert obj["status"]["progress"]["step"] == obj["status"]["progress"]["totalSteps"], dump(obj)
    cond = condition(obj, "Suspended")
    assert cond["status"] == "False" and cond["reason"] == "Resumed", dump(obj)


def test_two_node_job_is_admitted_as_one_unit_never_one_pod_of_two(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    queues: Callable[..., str],
    operator: kubetune_operator.Operator,
) -> None:
    cq = queues("team", gpus=1)  # room for one of its two pods only
    kube.create(FTJ.format(ns=namespace), gpu_job("wide", "team", resources={"numNodes": 2}))
    wait_for(lambda: queued(kube, namespace, "wide", "nvidia.com/gpu"), 120, "wide Queued for GPUs")
    # Kueue counts both pods of the Indexed Job: none runs while one would fit
    for _ in range(3):
        assert not kube.pods(namespace, TRAINER.format(name="wide")), "no pod of a gang that is not admitted"
        wait_for(lambda: queued(kube, namespace, "wide"), 10, "wide still Queued")
    usage = _workload(kube, namespace, "wide")["spec"]["podSets"][0]
    assert usage["count"] == 2, usage

    kube.patch(
        f"{KUEUE}/clusterqueues/{cq}",
        [{"op": "replace", "path": "/spec/resourceGroups/0/flavors/0/resources/2/nominalQuota", "value": 2}],
        kind="json",
    )
    wait_for(lambda: admitted(kube, namespace, "wide"), 120, "wide admitted once 2 GPUs fit")

    def both() -> list[dict[str, Any]] | None:
        found = kube.pods(namespace, TRAINER.format(name="wide"))
        return found if len(found) == 2 else None

    pods = wait_for(both, 60, "both pods of wide created together")
    assert {p["metadata"]["labels"].get("batch.kubernetes.io/job-completion-index") for p in pods} == {
        "0",
        "1",
    }
