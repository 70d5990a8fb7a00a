"""``numNodes: 2`` on the control plane: an Indexed Job of two pods running torchrun, which
rendezvous at pod 0 through the headless Service's DNS name and train data-parallel over gloo;
rank 0 reports progress, pushes the adapter and the operator registers it from pod 0's log."""

from __future__ import annotations

import re
from pathlib import Path

from ftj_helpers import FTJ, child_names, condition, dump, lora_job, phase_is

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

ADAPTERS = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/adapters"


def test_two_node_job_trains_across_both_pods_and_registers_one_adapter(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    adapter_registry: str,
    operator: kubetune_operator.Operator,
) -> None:
    repository = f"{adapter_registry}/team/wide"
    remote = repository.startswith("oci://")
    output = {"repository": repository, "tag": "v1", **({"insecure": True} if remote else {})}
    body = lora_job("wide", output=output, resources={"gpusPerNode": 0, "numNodes": 2})
    kube.create(FTJ.format(ns=namespace), body)
    obj = wait_for(lambda: phase_is(kube, namespace, "wide", "Succeeded", "Failed"), 240, "wide finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)

    job = kube.get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{child_names(kube, namespace, 'wide')['train']}"
    )
    assert job["spec"]["completionMode"] == "Indexed" and job["status"]["succeeded"] == 2, job["status"]
    pods = kube.pods(namespace, "kubetune.io/finetunejob=wide,kubetune.io/component=trainer")
    by_index = {p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    assert sorted(by_index) == ["0", "1"]
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2  # two pods, two addresses: the collectives crossed the pod network

    core = kube.core()
    leader = core.read_namespaced_pod_log(by_index["0"]["metadata"]["name"], namespace, container="trainer")
    worker = core.read_namespaced_pod_log(by_index["1"]["metadata"]["name"], namespace, container="trainer")
    assert '"worldSize": 2' in leader and "2 processes" in leader
    assert '"world_size": 2' in worker and '"rank": 1' in worker  # joined the process group
    assert '"event": "progress"' not in worker  # only rank 0 reports

    status = obj["status"]
    progress = status["progress"]
    assert progress["step"] == progress["totalSteps"] == status["preflight"]["estimatedSteps"], dump(obj)
    ref = (status.get("adapter") or {}).get("ref", "")
    assert re.fullmatch(re.escape(repository) + r"@sha256:[0-9a-f]{64}", ref), dump(obj)
    succeeded = condition(obj, "Succeeded")
    assert succeeded is not None and succeeded["reason"] == "AdapterRegistered", dump(obj)
    adapter = wait_for(
        lambda: kube.get_or_none(ADAPTERS.format(ns=namespace) + "/wide"), 30, "Adapter wide created"
    )
    assert adapter["spec"]["ref"] == ref
