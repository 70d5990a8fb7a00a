"""What Flux (kstatus) and Argo CD (the chart's Lua health script) make of a live FineTuneJob.

Each phase is judged on the object as the API server returns it, by cli-utils' kstatus package
(``hack/kstatus``) and by ``charts/kubetune/argocd/finetunejob.lua`` in a real Lua: in progress
from creation through preflight, suspension and training, Current/Healthy once the Adapter is
registered, Failed/Degraded when preflight fails, and never Current before it is done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ftj_helpers import FTJ, lora_job
from gitops_helpers import Timeline, judge, phase
from mdep_helpers import MDEP, model_deployment

from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.finetunejob import builders
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(300)
ADAPTERS = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/adapters"
RUNNING = ("Pending", "Validating", "Training", "Evaluating", "Exporting")
MANAGER = "gitops-test"


def apply(cluster: Cluster, body: dict[str, Any], namespace: str) -> dict[str, Any]:
    """``kubectl apply --server-side`` of ``body``, as Argo CD and Flux apply a manifest."""
    done = cluster.kubectl(
        "apply",
        "--server-side",
        f"--field-manager={MANAGER}",
        "-n",
        namespace,
        "-f",
        "-",
        "-o",
        "json",
        input=json.dumps(body),
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def training_jobs(kube: Kube, namespace: str, name: str) -> list[str]:
    found = kube.list(
        f"/apis/batch/v1/namespaces/{namespace}/jobs", labelSelector=f"{builders.LABEL_JOB}={name}"
    )
    return sorted(j["metadata"]["name"] for j in found)


def test_a_finetunejob_is_in_progress_until_its_adapter_is_registered_then_current_and_healthy(
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    operator: kubetune_operator.Operator,
    kstatus: str,
    lua: str,
) -> None:
    body = lora_job("bot", suspend=True)
    body["spec"]["hyperparameters"]["epochs"] = 4  # a few seconds of Training to see
    created = apply(cluster, body, namespace)
    line = Timeline(kube, kstatus, lua, FTJ.format(ns=namespace) + "/bot")
    first = line.record(created, "created")
    assert first.argocd == "Progressing", line.report()
    assert first.kstatus == "InProgress", line.report()

    line.until(lambda o: phase(o) == "Suspended", 120, "bot Suspended after its preflight")
    body["spec"]["suspend"] = False  # the next commit
    apply(cluster, body, namespace)
    done = line.until(lambda o: phase(o) in ("Succeeded", "Failed"), 200, "bot finished")
    assert done.phase == "Succeeded", line.report()

    assert {"created", "Validating", "Suspended", "Training", "Succeeded"} <= set(line.seen), line.report()
    for name, verdict in line.seen.items():
        if name in ("created", *RUNNING):
            assert (verdict.kstatus, verdict.argocd) == ("InProgress", "Progressing"), verdict
        elif name == "Suspended":
            assert (verdict.kstatus, verdict.argocd) == ("InProgress", "Suspended"), verdict
            assert "spec.suspend: false" in verdict.argocd_message, verdict
    assert (done.kstatus, done.argocd) == ("Current", "Healthy"), done
    assert "registered Adapter bot" in done.argocd_message, done
    # the Adapter it registered is Ready, and healthy to both tools
    adapter = kube.get(ADAPTERS.format(ns=namespace) + "/bot")
    verdict = judge(kstatus, lua, adapter)
    assert (verdict.kstatus, verdict.argocd) == ("Current", "Healthy"), verdict
    assert adapter["status"]["observedGeneration"] == adapter["metadata"]["generation"]

    # the GitOps tool applies the same manifest again (every sync): nothing changes, nothing trains
    jobs = training_jobs(kube, namespace, "bot")
    before = kube.get(FTJ.format(ns=namespace) + "/bot")
    again = apply(cluster, body, namespace)
    assert again["metadata"]["generation"] == before["metadata"]["generation"]
    assert again["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert training_jobs(kube, namespace, "bot") == jobs
    after = judge(kstatus, lua, kube.get(FTJ.format(ns=namespace) + "/bot"))
    assert (after.phase, after.kstatus, after.argocd) == ("Succeeded", "Current", "Healthy"), after

    # a commit that changes a mutable field of the finished job: accepted, observed, not trained
    edited = json.loads(json.dumps(body))
    edited["spec"]["hyperparameters"]["epochs"] = 5
    generation = apply(cluster, edited, namespace)["metadata"]["generation"]
    assert generation == before["metadata"]["generation"] + 1
    line = Timeline(kube, kstatus, lua, FTJ.format(ns=namespace) + "/bot")
    seen = line.until(
        lambda o: (o.get("status") or {}).get("observedGeneration") == generation, 30, "the edit observed"
    )
    assert (seen.phase, seen.kstatus, seen.argocd) == ("Succeeded", "Current", "Healthy"), seen
    assert f"finished at generation {generation - 1}" in seen.argocd_message, seen
    assert training_jobs(kube, namespace, "bot") == jobs

    # a commit that changes what the run is defined by is refused, saying what to do instead
    changed = json.loads(json.dumps(body))
    changed["spec"]["dataset"]["uri"] = "pvc://data/other.jsonl"
    refused = cluster.kubectl(
        "apply",
        "--server-side",
        f"--field-manager={MANAGER}",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(changed),
    )
    assert refused.returncode != 0, refused.stdout
    assert "spec.dataset is immutable" in refused.stderr and "new metadata.name" in refused.stderr, (
        refused.stderr
    )
    # pruning: the commit that removes the FineTuneJob deletes it (Argo CD prunes with foreground
    # propagation); its children go, the Adapter it registered stays, as does what serves it
    serve = model_deployment("serve", replicas=0, adapters=[{"name": "bot", "adapter": "bot"}])
    apply(cluster, serve, namespace)
    serving = Timeline(kube, kstatus, lua, MDEP.format(ns=namespace) + "/serve")
    ready = serving.until(lambda o: phase(o) == "Healthy", 60, "serve Healthy")
    assert (ready.kstatus, ready.argocd) == ("Current", "Healthy"), serving.report()
    wait_for(
        lambda: (
            f"{namespace}/serve"
            in (kube.get(ADAPTERS.format(ns=namespace) + "/bot").get("status") or {}).get("deployments", [])
        ),
        30,
        "Adapter bot served by serve",
    )
    pruned = cluster.kubectl(
        "delete", "finetunejob", "bot", "-n", namespace, "--cascade=foreground", "--wait=true"
    )
    assert pruned.returncode == 0, pruned.stderr
    wait_for(lambda: not training_jobs(kube, namespace, "bot"), 60, "the job's children garbage-collected")
    kept = kube.get(ADAPTERS.format(ns=namespace) + "/bot")
    assert kept["spec"]["ref"] == adapter["spec"]["ref"] and kept["status"]["state"] == "stable", kept
    still = judge(kstatus, lua, kube.get(MDEP.format(ns=namespace) + "/serve"))
    assert (still.kstatus, still.argocd) == ("Current", "Healthy"), still
    # pruning the ModelDeployment keeps the Adapter too (a registry entry outlives what serves it)
    gone = cluster.kubectl(
        "delete", "modeldeployment", "serve", "-n", namespace, "--cascade=foreground", "--wait=true"
    )
    assert gone.returncode == 0, gone.stderr
    assert kube.get(ADAPTERS.format(ns=namespace) + "/bot")["spec"]["ref"] == adapter["spec"]["ref"]


def test_a_finetunejob_whose_preflight_fails_is_failed_and_degraded(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator, kstatus: str, lua: str
) -> None:
    kube.create(FTJ.format(ns=namespace), lora_job("broken", dataset="pvc://data/broken.jsonl"))
    line = Timeline(kube, kstatus, lua, FTJ.format(ns=namespace) + "/broken")
    done = line.until(lambda o: phase(o) in ("Succeeded", "Failed"), 120, "broken finished")
    assert done.phase == "Failed", line.report()
    assert (done.kstatus, done.argocd) == ("Failed", "Degraded"), done
    assert "broken.jsonl:7" in done.kstatus_message and "broken.jsonl:7" in done.argocd_message, done
    assert "new name" in done.kstatus_message, done
    assert line.seen["Validating"].kstatus == "InProgress", line.report()
