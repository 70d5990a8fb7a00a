"""Helpers of the Kueue tests: FineTuneJobs that request GPUs in a queue, and status reads."""

from __future__ import annotations

from typing import Any

from ftj_helpers import condition, get_ftj, lora_job

from kubetune.testing.kube import Kube

TRAINER = "kubetune.io/finetunejob={name},kubetune.io/component=trainer"


def gpu_job(name: str, queue: str, gpus: int = 1, **spec: Any) -> dict[str, Any]:
    resources = {"gpusPerNode": gpus, "cpu": "1", "memory": "2Gi", **spec.pop("resources", {})}
    return lora_job(name, queueName=queue, resources=resources, **spec)


def queued(kube: Kube, namespace: str, name: str, says: str = "") -> dict[str, Any] | None:
    """The FineTuneJob while it is Queued and its condition's message has ``says``."""
    obj = get_ftj(kube, namespace, name)
    cond = condition(obj, "Queued")
    waiting = obj.get("status", {}).get("phase") == "Queued" and cond and cond["status"] == "True"
    return obj if waiting and says in cond["message"] else None


def admitted(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get_ftj(kube, namespace, name)
    cond = condition(obj, "Queued")
    return obj if cond and cond["status"] == "False" and cond["reason"] == "Admitted" else None
