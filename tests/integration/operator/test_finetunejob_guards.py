"""What the operator must prevent: GPU over-asks crash-looping, cross-job access, duplicate Jobs."""

from __future__ import annotations

import time
from pathlib import Path

from ftj_helpers import FTJ, child_names, condition, dump, get_ftj, lora_job, phase_is
from kopf.testing import KopfRunner

from kubetune.clients import kube as kubeclient
from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster, CrdReport
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for
from kubetune.trainer import statussink
from kubetune.trainer.progress import ProgressEvent


def test_more_gpus_than_any_node_is_insufficient_gpu_without_crash_loop(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    kube.create(FTJ.format(ns=namespace), lora_job("greedy", resources={"gpusPerNode": 8}))

    def insufficient() -> dict[str, object] | None:
        cond = condition(get_ftj(kube, namespace, "greedy"), "Scheduled")
        return cond if cond and cond["reason"] == "InsufficientGPU" else None

    cond = wait_for(insufficient, 90, "Scheduled=False/InsufficientGPU")
    assert cond["status"] == "False" and "nvidia.com/gpu" in str(cond["message"]), cond
    obj = get_ftj(kube, namespace, "greedy")
    assert obj["status"]["phase"] == "Pending", dump(obj)
    time.sleep(3)  # several resync periods: nothing may be recreated meanwhile
    pods = kube.pods(namespace, "kubetune.io/finetunejob=greedy,kubetune.io/component=trainer")
    assert len(pods) == 1 and not pods[0]["spec"].get("nodeName"), pods
    jobs = [j["metadata"]["name"] for j in kube.list(f"/apis/batch/v1/namespaces/{namespace}/jobs")]
    n = child_names(kube, namespace, "greedy")
    assert sorted(jobs) == sorted([n["preflight"], n["train"]])
    warnings = [e for e in kube.events(namespace, "greedy") if e["reason"] == "InsufficientGPU"]
    assert len(warnings) == 1, warnings  # one event per transition, not one per resync


def _review(kube: Kube, namespace: str, sa: str, verb: str, name: str, sub: str = "") -> bool:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:{sa}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": {
                "namespace": namespace,
                "group": "kubetune.io",
                "resource": "finetunejobs",
                "subresource": sub,
                "verb": verb,
                "name": name,
            },
        },
    }
    out = kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
    return bool(out["status"]["allowed"])


def test_a_jobs_service_account_touches_only_its_own_finetunejob(
    cluster: Cluster, kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    for name in ("alpha", "beta"):
        kube.create(FTJ.format(ns=namespace), lora_job(name, suspend=True))
    for name in ("alpha", "beta"):
        wait_for(lambda n=name: phase_is(kube, namespace, n, "Suspended"), 90, f"{name} suspended")
    sa = "alpha-trainer"
    assert _review(kube, namespace, sa, "get", "alpha")
    assert _review(kube, namespace, sa, "patch", "alpha", "status")
    assert not _review(kube, namespace, sa, "get", "beta")
    assert not _review(kube, namespace, sa, "patch", "beta", "status")
    assert not _review(kube, namespace, sa, "patch", "alpha")  # spec is not the pod's to change
    assert not _review(kube, namespace, sa, "list", "")
    assert not _review(kube, namespace, sa, "delete", "alpha")
    # The same with real requests carrying the ServiceAccount's token, through the status sink.
    token = kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )["status"]["token"]
    as_pod = kubeclient.Kube.with_token(cluster.server, token, str(cluster.pki.ca_crt))
    own = statussink.StatusSink(as_pod, namespace, "alpha")
    own.emit(ProgressEvent(3, 10, 0.3, 1.25, 0.01, 50.0, 7.0))
    assert own.patches == 1
    progress = get_ftj(kube, namespace, "alpha")["status"]["progress"]
    assert progress["step"] == 3 and progress["summary"] == "3/10 (30%)", progress
    other = statussink.StatusSink(as_pod, namespace, "beta")
    other.emit(ProgressEvent(3, 10, 0.3, 1.25, 0.01, 50.0, 7.0))
    assert other.patches == 0
    for verb, url in (("GET", FTJ.format(ns=namespace) + "/beta"), ("GET", FTJ.format(ns=namespace))):
        try:
            as_pod.request(verb, url)
        except kubeclient.ApiError as exc:
            assert exc.status == 403, exc
        else:
            raise AssertionError(f"{sa} could {verb} {url}")
    assert as_pod.get(FTJ.format(ns=namespace) + "/alpha") is not None
    assert "progress" not in (get_ftj(kube, namespace, "beta").get("status") or {})
    as_pod.close()
    # Suspended before training: preflight ran, no training Job exists.
    jobs = sorted(j["metadata"]["name"] for j in kube.list(f"/apis/batch/v1/namespaces/{namespace}/jobs"))
    want = [child_names(kube, namespace, j)["preflight"] for j in ("alpha", "beta")]
    assert jobs == sorted(want), jobs


def test_operator_restart_mid_training_creates_no_second_job(
    cluster: Cluster,
    kube: Kube,
    kubetune_crds: CrdReport,
    namespace: str,
    data_pvc: Path,
    operator_settings: Settings,
) -> None:
    client = kubeclient.Kube.from_environment(str(cluster.kubeconfig))
    args = ["run", "--standalone", "--namespace", namespace]
    body = lora_job("restart", hyperparameters={"epochs": 6, "batchSize": 4, "maxSeqLength": 256})
    first = kubetune_operator.build(operator_settings, client, resync_seconds=1.0)
    with KopfRunner(args, registry=first.registry, settings=first.kopf_settings, timeout=60) as runner:
        kube.create(FTJ.format(ns=namespace), body)

        def training() -> dict[str, object] | None:
            obj = get_ftj(kube, namespace, "restart")
            progress = (obj.get("status") or {}).get("progress") or {}
            return obj if progress.get("step", 0) > 0 else None

        wait_for(training, 120, "restart training")
    assert runner.exception is None, runner.exception
    job_uid = kube.get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{child_names(kube, namespace, 'restart')['train']}"
    )["metadata"]["uid"]
    second = kubetune_operator.build(operator_settings, client, resync_seconds=1.0)
    with KopfRunner(args, registry=second.registry, settings=second.kopf_settings, timeout=60) as runner:
        obj = wait_for(lambda: phase_is(kube, namespace, "restart", "Succeeded", "Failed"), 150, "finished")
    assert runner.exception is None, runner.exception
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    jobs = kube.list(f"/apis/batch/v1/namespaces/{namespace}/jobs")
    train = [j for j in jobs if j["metadata"]["name"].startswith("restart-train")]
    assert len(train) == 1 and train[0]["metadata"]["uid"] == job_uid
    assert len(kube.pods(namespace, "kubetune.io/component=trainer")) == 1
    assert obj["status"]["attempts"] == 1
    client.close()
