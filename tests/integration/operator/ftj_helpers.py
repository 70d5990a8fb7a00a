"""Helpers of the operator integration tests: FineTuneJob bodies, PVC host paths, status reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.controllers.finetunejob import builders
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

FTJ = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/finetunejobs"


def claim_dir(kube: Kube, namespace: str, claim: str) -> Path | None:
    pvc = kube.get_or_none(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
    volume = (pvc or {}).get("spec", {}).get("volumeName")
    if not volume or (pvc or {}).get("status", {}).get("phase") != "Bound":
        return None
    pv = kube.get(f"/api/v1/persistentvolumes/{volume}")
    return Path(pv["spec"]["hostPath"]["path"])


def make_claim(kube: Kube, namespace: str, name: str) -> Path:
    kube.create(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    return wait_for(lambda: claim_dir(kube, namespace, name), 30, f"PVC {name} bound")


def lora_job(name: str, dataset: str = "pvc://data/train.jsonl", **spec: Any) -> dict[str, Any]:
    """A small LoRA FineTuneJob on the tiny model: a few dozen CPU steps."""
    body: dict[str, Any] = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "dataset": {"uri": dataset, "format": "instruction", "validationSplit": 0.2},
            "method": {"type": "lora", "lora": {"r": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj"]}},
            "hyperparameters": {"epochs": 2, "batchSize": 4, "maxSeqLength": 256, "learningRate": 0.01},
            "resources": {"gpusPerNode": 0},
            "evaluation": {"metrics": ["loss"], "maxSamples": 4, "maxNewTokens": 4},
            "checkpointEverySteps": 4,
        },
    }
    body["spec"].update(spec)
    return body


def get_ftj(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(FTJ.format(ns=namespace) + f"/{name}")


def child_names(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    """The names of the FineTuneJob's children as the operator makes them (its Jobs carry a hash
    of the job's uid, so they are read from the live object, never written out)."""
    return builders.names(FineTuneJob.model_validate(get_ftj(kube, namespace, name)))


def phase_is(kube: Kube, namespace: str, name: str, *phases: str) -> dict[str, Any] | None:
    obj = get_ftj(kube, namespace, name)
    return obj if (obj.get("status") or {}).get("phase") in phases else None


def condition(obj: dict[str, Any], type: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type), None)


def dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj.get("status"), indent=1)[:3000]
