"""Children that belong to someone else: a FineTuneJob never uses an object it does not own.

Anyone who may create objects in a namespace can take a child's name before the job does (a
``<job>-spec`` ConfigMap holding another spec) or create pods carrying the job's labels that
print a forged result. The job ends with a condition naming the foreign object, and nothing of
it (the spec, a pod's log) is used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from ftj_helpers import FTJ, condition, dump, get_ftj, lora_job, phase_is

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

FORGED_REF = "oci://registry.evil.example/ml/forged@sha256:" + "e" * 64


def test_a_spec_configmap_under_the_jobs_name_that_is_not_its_own_is_never_mounted(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    # Someone else's spec under the name the operator would give the job's spec: it points at
    # the broken dataset, so a preflight that mounted it would fail on line 7.
    other = lora_job("victim", dataset="pvc://data/broken.jsonl")
    other["metadata"].update(namespace=namespace, uid="not-the-victims-uid")
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "victim-spec"},
        "data": {"spec.yaml": yaml.safe_dump(other)},
    }
    kube.create(f"/api/v1/namespaces/{namespace}/configmaps", configmap)
    kube.create(FTJ.format(ns=namespace), lora_job("victim"))
    obj = wait_for(lambda: phase_is(kube, namespace, "victim", "Failed", "Succeeded"), 60, "victim finished")
    failed = condition(obj, "Failed")
    assert failed is not None and failed["reason"] == "ForeignChild", dump(obj)
    assert (
        f"ConfigMap {namespace}/victim-spec exists and is not owned by this FineTuneJob" in failed["message"]
    )
    # nothing ran from it, and it is left as it was
    jobs = kube.list(f"/apis/batch/v1/namespaces/{namespace}/jobs")
    assert jobs == [], [j["metadata"]["name"] for j in jobs]
    stored = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/victim-spec")
    assert stored["data"] == configmap["data"] and not stored["metadata"].get("ownerReferences")
    assert "ForeignChild" in {e["reason"] for e in kube.events(namespace, "victim")}


def _forged_pod(namespace: str) -> dict[str, Any]:
    """A pod with the trainer's labels whose log says training pushed an artifact."""
    result = {
        "event": "phase",
        "phase": "result",
        "result": {
            "job": "honest",
            "outcome": "Succeeded",
            "exitCode": 0,
            "pushed": {"ref": FORGED_REF, "tag": "forged"},
            "lineage": {"dataset": {"sha256": "e" * 64}},
            "metrics": [{"name": "loss", "base": 9.0, "tuned": 0.1, "delta": 8.9}],
            "gate": {"passed": True, "message": "forged"},
        },
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "forger",
            "namespace": namespace,
            "labels": {
                "kubetune.io/finetunejob": "honest",
                "kubetune.io/component": "trainer",
                "app.kubernetes.io/managed-by": "kubetune",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "trainer",
                    "image": "busybox",
                    "command": ["sh", "-c", f"echo '{json.dumps(result)}'"],
                }
            ],
        },
    }


def test_a_pod_that_only_carries_the_trainer_labels_is_not_read_for_the_result(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    kube.create(FTJ.format(ns=namespace), lora_job("honest"))
    selector = "kubetune.io/finetunejob=honest,kubetune.io/component=trainer"
    wait_for(lambda: kube.pods(namespace, selector) or None, 120, "the real trainer pod")
    time.sleep(1.1)  # creation timestamps have second resolution: the forged pod is the newest
    kube.create(f"/api/v1/namespaces/{namespace}/pods", _forged_pod(namespace))
    obj = wait_for(lambda: phase_is(kube, namespace, "honest", "Succeeded", "Failed"), 180, "honest finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    forger = kube.get(f"/api/v1/namespaces/{namespace}/pods/forger")
    assert forger["status"]["phase"] == "Succeeded"  # its log was there to be read
    assert (obj["status"].get("adapter") or {}).get("ref") != FORGED_REF, dump(obj)
    loss = next(m for m in obj["status"].get("metrics") or [] if m["name"] == "loss")
    assert loss["base"] != 9.0, dump(obj)
    adapters = kube.list(f"/apis/kubetune.io/v1alpha1/namespaces/{namespace}/adapters")
    assert all(a["spec"]["ref"] != FORGED_REF for a in adapters), adapters
    assert get_ftj(kube, namespace, "honest")["status"]["phase"] == "Succeeded"
