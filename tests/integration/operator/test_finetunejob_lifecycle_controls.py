"""Lifecycle controls of a running FineTuneJob on the real control plane: suspend and resume,
a training pod killed mid-run (retried from the last checkpoint), and activeDeadlineSeconds.

Training is made long enough to act on mid-run with the spec's own knobs (more epochs,
``checkpointEverySteps``), never with sleeps in the trainer. Checkpoints go to a PVC where a
test needs them to outlive the pod, so the test can read the complete ones on the host.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from ftj_helpers import FTJ, child_names, condition, dump, get_ftj, lora_job, make_claim, phase_is

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

# ~10 steps per epoch on the tiny model; a few steps per second on the test machine's CPU.
LONG = {"epochs": 30, "batchSize": 4, "maxSeqLength": 256, "learningRate": 0.01}
TRAINER = "kubetune.io/finetunejob={name},kubetune.io/component=trainer"


def _url(namespace: str, name: str) -> str:
    return FTJ.format(ns=namespace) + f"/{name}"


def _trainer_pods(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    return kube.pods(namespace, TRAINER.format(name=name))


def _at_step(kube: Kube, namespace: str, name: str, step: int) -> dict[str, Any] | None:
    obj = get_ftj(kube, namespace, name)
    progress = (obj.get("status") or {}).get("progress") or {}
    return obj if progress.get("step", 0) >= step else None


def _complete_checkpoints(root: Path) -> list[int]:
    """Steps of the complete checkpoints in a checkpoint volume (the trainer's layout)."""
    return sorted(
        int(p.name.removeprefix("step-")) for p in root.glob("step-*") if (p / "COMPLETE").is_file()
    )


def _running_trainer(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    for pod in _trainer_pods(kube, namespace, name):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs["name"] == "trainer" and "running" in (cs.get("state") or {}):
                return pod
    return None


def test_suspend_checkpoints_frees_the_pod_and_unsuspend_resumes_from_that_checkpoint(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    checkpoints = make_claim(kube, namespace, "ckpt")
    body = lora_job(
        "pausable", hyperparameters=LONG, checkpointEverySteps=10, checkpointStorage={"claimName": "ckpt"}
    )
    kube.create(FTJ.format(ns=namespace), body)
    wait_for(lambda: _at_step(kube, namespace, "pausable", 13), 180, "pausable past step 13")

    kube.patch(_url(namespace, "pausable"), {"spec": {"suspend": True}})

    def suspended() -> dict[str, Any] | None:
        if _trainer_pods(kube, namespace, "pausable"):
            return None
        obj = get_ftj(kube, namespace, "pausable")
        cond = condition(obj, "Suspended")
        freed = cond is not None and cond["status"] == "True" and "GPUs freed" in cond["message"]
        return obj if obj["status"]["phase"] == "Suspended" and freed else None

    obj = wait_for(suspended, 90, "pausable suspended with its trainer pod gone")
    job = kube.get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{child_names(kube, namespace, 'pausable')['train']}"
    )
    assert job["spec"]["suspend"] is True and not job["status"].get("active"), job["status"]
    # SIGTERM made the trainer write a checkpoint at the step it had reached, past the last
    # periodic one (every 10 steps), before the pod went away.
    steps = _complete_checkpoints(checkpoints / "pausable")
    stopped_at = steps[-1]
    assert stopped_at >= obj["status"]["progress"]["step"] >= 13, (steps, dump(obj))
    total = obj["status"]["progress"]["totalSteps"]
    assert stopped_at < total, (steps, dump(obj))
    reasons = {e["reason"] for e in kube.events(namespace, "pausable")}
    assert {"Suspended", "PhaseSuspended"} <= reasons, reasons

    kube.patch(_url(namespace, "pausable"), {"spec": {"suspend": False}})
    resumed = f"resumed from checkpoint at step {stopped_at}"

    def running_again() -> dict[str, Any] | None:
        obj = get_ftj(kube, namespace, "pausable")
        cond = condition(obj, "Training")
        return obj if cond is not None and cond["status"] == "True" and cond["reason"] == "Resumed" else None

    obj = wait_for(running_again, 120, "pausable training again after the resume")
    assert condition(obj, "Training")["message"] == resumed, dump(obj)
    # The checkpoint written on SIGTERM is listed once the new pod reports loading it.
    assert stopped_at in [c["step"] for c in obj["status"]["checkpoints"]], dump(obj)
    obj = wait_for(
        lambda: phase_is(kube, namespace, "pausable", "Succeeded", "Failed"), 240, "pausable finished"
    )
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    cond = condition(obj, "Suspended")
    assert cond is not None and cond["status"] == "False" and cond["reason"] == "Resumed", dump(obj)
    assert resumed in cond["message"], dump(obj)
    training = condition(obj, "Training")
    assert training is not None and resumed in training["message"], dump(obj)
    assert obj["status"]["progress"]["step"] == total, dump(obj)
    assert obj["status"]["attempts"] == 1, dump(obj)  # a suspension is not a failed attempt
    wanted = {"Resumed", "PhaseSucceeded"}
    wait_for(
        lambda: wanted <= {e["reason"] for e in kube.events(namespace, "pausable")}, 30, f"events {wanted}"
    )


def test_sigkilled_trainer_is_restarted_in_its_pod_and_resumes_from_the_last_checkpoint(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    # Default checkpoint storage (emptyDir): it outlives a container restart in the same pod.
    kube.create(FTJ.format(ns=namespace), lora_job("crashy", hyperparameters=LONG, checkpointEverySteps=5))

    def checkpointed() -> dict[str, Any] | None:
        obj = get_ftj(kube, namespace, "crashy")
        return (
            obj if any(c["step"] >= 10 for c in (obj.get("status") or {}).get("checkpoints") or []) else None
        )

    seen = wait_for(checkpointed, 180, "crashy has a checkpoint at step 10 or later")
    pod = wait_for(lambda: _running_trainer(kube, namespace, "crashy"), 30, "crashy trainer running")
    status = next(cs for cs in pod["status"]["containerStatuses"] if cs["name"] == "trainer")
    pid = int(status["containerID"].removeprefix("kubetune://"))  # the test agent runs processes
    os.killpg(pid, signal.SIGKILL)  # no SIGTERM, so no checkpoint on the way out

    def retrying() -> tuple[dict[str, Any], int] | None:
        obj = get_ftj(kube, namespace, "crashy")
        cond = condition(obj, "Training")
        if (
            cond is None
            or cond["reason"] != "Retrying"
            or "resumed from checkpoint at step" not in cond["message"]
        ):
            return None
        return obj, int(cond["message"].rsplit(" ", 1)[1])

    obj, step = wait_for(retrying, 120, "crashy retrying from a checkpoint")
    last_seen = max(c["step"] for c in seen["status"]["checkpoints"])
    assert step >= last_seen and step % 5 == 0, dump(obj)
    assert "attempt 2 " in condition(obj, "Training")["message"], dump(obj)
    pods = _trainer_pods(kube, namespace, "crashy")
    assert [p["metadata"]["uid"] for p in pods] == [pod["metadata"]["uid"]]  # same pod, restarted

    obj = wait_for(lambda: phase_is(kube, namespace, "crashy", "Succeeded", "Failed"), 240, "crashy finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    assert obj["status"]["attempts"] == 2, dump(obj)
    training = condition(obj, "Training")
    assert training is not None and f"resumed from checkpoint at step {step}" in training["message"], dump(
        obj
    )
    warnings = {e["reason"] for e in kube.events(namespace, "crashy") if e["type"] == "Warning"}
    assert "Retrying" in warnings, warnings


def test_deleted_training_pod_is_replaced_and_resumes_from_its_sigterm_checkpoint(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    checkpoints = make_claim(kube, namespace, "ckpt")
    body = lora_job(
        "evicted", hyperparameters=LONG, checkpointEverySteps=10, checkpointStorage={"claimName": "ckpt"}
    )
    kube.create(FTJ.format(ns=namespace), body)
    wait_for(lambda: _at_step(kube, namespace, "evicted", 13), 180, "evicted past step 13")
    (first,) = _trainer_pods(kube, namespace, "evicted")
    kube.delete(f"/api/v1/namespaces/{namespace}/pods/{first['metadata']['name']}")
    wait_for(
        lambda: (
            first["metadata"]["uid"]
            not in {p["metadata"]["uid"] for p in _trainer_pods(kube, namespace, "evicted")}
        ),
        60,
        "the first trainer pod gone",
    )
    stopped_at = _complete_checkpoints(checkpoints / "evicted")[-1]
    assert stopped_at >= 13, stopped_at

    def retrying() -> dict[str, Any] | None:
        obj = get_ftj(kube, namespace, "evicted")
        cond = condition(obj, "Training")
        return (
            obj
            if cond is not None and cond["reason"] == "Retrying" and "resumed" in cond["message"]
            else None
        )

    obj = wait_for(retrying, 120, "evicted retrying from a checkpoint")
    cond = condition(obj, "Training")
    assert f"attempt 2 resumed from checkpoint at step {stopped_at}" in cond["message"], dump(obj)
    assert stopped_at in [c["step"] for c in obj["status"]["checkpoints"]], dump(obj)

    obj = wait_for(
        lambda: phase_is(kube, namespace, "evicted", "Succeeded", "Failed"), 240, "evicted finished"
    )
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    assert obj["status"]["attempts"] == 2, dump(obj)
    assert f"resumed from checkpoint at step {stopped_at}" in condition(obj, "Training")["message"], dump(obj)


def test_job_past_its_active_deadline_fails_with_deadline_exceeded_and_no_training_pods(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    body = lora_job("late", hyperparameters={**LONG, "epochs": 500}, activeDeadlineSeconds=30)
    kube.create(FTJ.format(ns=namespace), body)
    obj = wait_for(lambda: phase_is(kube, namespace, "late", "Failed", "Succeeded"), 180, "late finished")
    assert obj["status"]["phase"] == "Failed", dump(obj)
    failed = condition(obj, "Failed")
    assert failed is not None and failed["status"] == "True" and failed["reason"] == "DeadlineExceeded", dump(
        obj
    )
    assert "activeDeadlineSeconds (30s)" in failed["message"], failed
    progress = obj["status"].get("progress") or {}
    assert progress.get("step", 0) < progress.get("totalSteps", 1), dump(obj)
    wait_for(lambda: not _trainer_pods(kube, namespace, "late"), 60, "late's trainer pods gone")
    wait_for(
        lambda: "DeadlineExceeded" in {e["reason"] for e in kube.events(namespace, "late")},
        30,
        "a DeadlineExceeded event",
    )
