"""FineTuneJobs in Kueue queues on the real control plane with the real Kueue: GPU quota per
team, borrowing through a cohort, gang admission of a multi-node job.

Each job trains the tiny model for a few CPU steps (the trainer pods request nvidia.com/gpu,
which the node agent's GPU nodes advertise, so the quotas count GPUs; training itself runs on
the CPU). Kueue's own words (its Workload's conditions) are what the FineTuneJob shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import KUEUE
from ftj_helpers import FTJ, child_names, condition, dump, phase_is
from queue_helpers import TRAINER, admitted, gpu_job, queued

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for


def test_job_beyond_the_gpu_quota_stays_queued_with_kueues_reason_and_starts_when_the_first_finishes(
    kube: Kube,
    cluster: Cluster,
    namespace: str,
    data_pvc: Path,
    queues: Callable[..., str],
    operator: kubetune_operator.Operator,
) -> None:
    cq = queues("team-a", gpus=1)
    queues("team-b", gpus=1)  # another team's queue: its quota is not team-a's
    kube.create(FTJ.format(ns=namespace), gpu_job("first", "team-a"))
    obj = wait_for(lambda: admitted(kube, namespace, "first"), 120, "first admitted by Kueue")
    assert obj["status"]["queue"]["clusterQueue"] == cq, dump(obj)
    train = kube.get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{child_names(kube, namespace, 'first')['train']}"
    )
    assert train["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"

    kube.create(FTJ.format(ns=namespace), gpu_job("second", "team-a"))
    obj = wait_for(lambda: queued(kube, namespace, "second", "quota"), 120, "second Queued for quota")
    cond = condition(obj, "Queued")
    # Kueue's reason, in its words: no nvidia.com/gpu quota left in team-a's ClusterQueue
    assert "insufficient unused quota for nvidia.com/gpu" in cond["message"], dump(obj)
    queue = obj["status"]["queue"]
    assert queue["localQueue"] == "team-a" and queue["clusterQueue"] == cq and not queue["admitted"], dump(
        obj
    )
    assert not kube.pods(namespace, TRAINER.format(name="second")), "a queued job must have no trainer pod"
    table = cluster.kubectl("get", "ftj", "-n", namespace, "-o", "wide", check=True).stdout
    row = next(line for line in table.splitlines() if line.startswith("second "))
    assert "Queued" in row and cq in row, table

    # another team's queue admits its own job meanwhile
    kube.create(FTJ.format(ns=namespace), gpu_job("other-team", "team-b"))
    wait_for(lambda: admitted(kube, namespace, "other-team"), 120, "team-b's job admitted")

    obj = wait_for(lambda: phase_is(kube, namespace, "first", "Succeeded", "Failed"), 300, "first finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    obj = wait_for(lambda: admitted(kube, namespace, "second"), 120, "second admitted once first finished")
    wanted = {"Queued", "Admitted", "PhaseQueued"}
    wait_for(
        lambda: wanted <= {e["reason"] for e in kube.events(namespace, "second")}, 30, f"events {wanted}"
    )
    obj = wait_for(lambda: phase_is(kube, namespace, "second", "Succeeded", "Failed"), 300, "second finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)


def test_a_team_borrows_idle_gpus_of_its_cohort(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    queues: Callable[..., str],
    operator: kubetune_operator.Operator,
) -> None:
    cohort = f"research-{namespace[-5:]}"
    lender = queues("lender", gpus=2, cohort=cohort)
    borrower = queues("borrower", gpus=1, cohort=cohort)
    alone = queues("alone", gpus=1)  # the same need, no cohort: it cannot borrow
    kube.create(FTJ.format(ns=namespace), gpu_job("lonely", "alone", gpus=2))
    kube.create(FTJ.format(ns=namespace), gpu_job("wide", "borrower", gpus=2))
    obj = wait_for(lambda: admitted(kube, namespace, "wide"), 120, "wide admitted by borrowing")
    assert obj["status"]["queue"]["clusterQueue"] == borrower, dump(obj)
    # Kueue's record of the admission: 2 GPUs in a ClusterQueue whose own quota is 1
    train = kube.get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{child_names(kube, namespace, 'wide')['train']}"
    )
    workloads = kube.list(
        f"{KUEUE}/namespaces/{namespace}/workloads",
        labelSelector=f"kueue.x-k8s.io/job-uid={train['metadata']['uid']}",
    )
    admission = workloads[0]["status"]["admission"]
    assert admission["clusterQueue"] == borrower, admission
    assert admission["podSetAssignments"][0]["resourceUsage"]["nvidia.com/gpu"] == "2", admission
    assert lender
    obj = wait_for(lambda: queued(kube, namespace, "lonely", "nvidia.com/gpu"), 60, "lonely Queued for GPUs")
    assert alone in obj["status"]["queue"]["clusterQueue"], dump(obj)
    assert "nvidia.com/gpu" in condition(obj, "Queued")["message"], dump(obj)
