"""A FineTuneJob through the real control plane: preflight on CPU, training, status, events."""

from __future__ import annotations

from pathlib import Path

from ftj_helpers import FTJ, child_names, condition, dump, get_ftj, lora_job, phase_is

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for


def test_lora_job_succeeds_with_preflight_progress_metrics_and_events(
    cluster: Cluster, kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    kube.create(FTJ.format(ns=namespace), lora_job("bot"))
    obj = wait_for(lambda: phase_is(kube, namespace, "bot", "Succeeded", "Failed"), 150, "bot finished")
    status = obj["status"]
    assert status["phase"] == "Succeeded", dump(obj)
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["preflight"]["passed"] is True and status["preflight"]["trainRows"] > 0
    assert status["progress"]["step"] == status["progress"]["totalSteps"] > 0, dump(obj)
    # the bounded loss line `kubetune status ftj` draws, kept by the operator from the progress lines
    assert 2 <= len(status["progress"]["lossHistory"]) <= 60, dump(obj)
    assert status["checkpoints"], dump(obj)
    # Base vs tuned on the held-out split, from the trainer's result.
    loss = next((m for m in status.get("metrics") or [] if m["name"] == "loss"), None)
    assert loss is not None and loss["base"] is not None and loss["tuned"] is not None, dump(obj)
    assert abs(loss["delta"] - (loss["base"] - loss["tuned"])) < 1e-5, dump(obj)  # lower loss is better
    # ... and on the operator's /metrics, for the Training dashboard's loss panel. The gauges are
    # set after the status patch and the events of the pass that ended the job: they may trail it.
    series = {"namespace": namespace, "name": "bot"}
    registry = operator.metrics.registry
    wait_for(
        lambda: (
            registry.get_sample_value("kubetune_finetunejob_phase", {**series, "phase": "Succeeded"}) == 1
        ),
        30,
        "the phase gauge at Succeeded",
    )
    assert (
        registry.get_sample_value("kubetune_finetunejob_loss", {**series, "split": "eval"}) == loss["tuned"]
    )
    assert condition(obj, "PreflightPassed")["status"] == "True"
    assert condition(obj, "Succeeded")["status"] == "True"
    # Events are posted after the status patch that ends the job, so the last one may trail it.
    wanted = {"PreflightRunning", "PreflightPassed", "PhaseTraining", "PhaseSucceeded"}
    wait_for(lambda: wanted <= {e["reason"] for e in kube.events(namespace, "bot")}, 30, f"events {wanted}")
    jobs = kube.list(f"/apis/batch/v1/namespaces/{namespace}/jobs")
    n = child_names(kube, namespace, "bot")
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted([n["preflight"], n["train"]])
    printed = cluster.kubectl("get", "ftj", "bot", "-n", namespace)
    assert "Succeeded" in printed.stdout and "100%" in printed.stdout, printed.stdout


def test_broken_dataset_fails_preflight_with_line_number_and_no_training_job(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    kube.create(FTJ.format(ns=namespace), lora_job("broken", dataset="pvc://data/broken.jsonl"))
    obj = wait_for(lambda: phase_is(kube, namespace, "broken", "Failed", "Succeeded"), 120, "broken finished")
    assert obj["status"]["phase"] == "Failed", dump(obj)
    cond = condition(obj, "PreflightPassed")
    assert cond is not None and cond["status"] == "False" and cond["reason"] == "PreflightFailed"
    assert "broken.jsonl:7" in cond["message"], cond
    assert obj["status"]["preflight"]["passed"] is False
    jobs = [j["metadata"]["name"] for j in kube.list(f"/apis/batch/v1/namespaces/{namespace}/jobs")]
    assert jobs == [child_names(kube, namespace, "broken")["preflight"]], jobs
    pods = kube.pods(namespace)
    assert pods and all(
        "nvidia.com/gpu" not in (c.get("resources") or {}).get("limits", {})
        for p in pods
        for c in p["spec"]["containers"]
    )
    assert get_ftj(kube, namespace, "broken")["status"]["phase"] == "Failed"
