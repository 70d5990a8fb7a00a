"""FineTuneJob children: golden manifests for the main shapes, plus the rules they must keep.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/controllers`` and review the diff.
"""

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.api.contract.result import RunResult
from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.controllers.finetunejob import builders
from kubetune.controllers.settings import Settings

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = Settings(trainer_image="ghcr.io/kubetune/trainer:test", default_registry="oci://registry.test/ml")


def make_job(**spec: Any) -> FineTuneJob:
    return FineTuneJob.model_validate(
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "bot", "namespace": "ml", "uid": "0000-1111"},
            "spec": {
                "baseModel": {"uri": "hf://org/model"},
                "dataset": {"uri": "pvc://data/train.jsonl"},
                **spec,
            },
        }
    )


CASES: dict[str, FineTuneJob] = {
    "single-node-cpu": make_job(resources={"gpusPerNode": 0}),
    "gpu": make_job(
        resources={
            "gpusPerNode": 2,
            "gpuProduct": "NVIDIA-L4",
            "cpu": 8,
            "memory": "32Gi",
            "nodeSelector": {"pool": "train"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "batch-high",
        },
        checkpointStorage={"claimName": "bot-ckpt"},
        activeDeadlineSeconds=3600,
    ),
    "multi-node": make_job(method={"type": "full"}, resources={"numNodes": 3, "gpusPerNode": 8}),
    "secrets": make_job(
        baseModel={"uri": "hf://org/private", "secretRef": {"name": "hf", "key": "token"}},
        dataset={"uri": "s3://b/train.jsonl", "secretRef": {"name": "s3", "key": "key"}},
        output={
            "repository": "oci://registry.example.com/ml/bot",
            "secretRef": {"name": "reg", "key": ".dockerconfigjson"},
        },
    ),
}


def render(job: FineTuneJob) -> str:
    docs = [*builders.children(job, SETTINGS), builders.training_job(job, SETTINGS)]
    return yaml.safe_dump_all(docs, sort_keys=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_children_match_golden_manifests(case: str) -> None:
    path = GOLDEN / f"{case}.yaml"
    text = render(CASES[case])
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), (
        f"{path} differs; if intended, regenerate with UPDATE_GOLDEN=1 and review"
    )


def test_builders_are_deterministic() -> None:
    assert render(CASES["gpu"]) == render(CASES["gpu"])


def test_a_recreated_job_of_the_same_name_gets_jobs_of_other_names() -> None:
    # Kubernetes' Job controller keys pod expectations by namespace/name: a Job re-created under
    # a just-deleted Job's name can create no pods for minutes (kubernetes/kubernetes#131917).
    first = builders.names(make_job())
    again = make_job()
    again.metadata.uid = "2222-3333"
    second = builders.names(again)
    assert builders.names(make_job()) == first  # the same job: the same names, on every pass
    for child in ("preflight", "train", "service"):
        assert first[child] != second[child], child
        assert re.fullmatch(r"bot-(preflight|train|workers)-[0-9a-f]{5}", first[child]), first[child]
    assert first["configmap"] == second["configmap"] == "bot-spec"


@pytest.mark.parametrize("case", sorted(CASES))
def test_preflight_never_requests_a_gpu(case: str) -> None:
    pre = builders.preflight_job(CASES[case], SETTINGS)
    (container,) = pre["spec"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" not in str(container["resources"])
    assert "nodeSelector" not in pre["spec"]["template"]["spec"]


def test_gpu_requests_equal_limits_with_product_selector() -> None:
    train = builders.training_job(CASES["gpu"], SETTINGS)
    pod = train["spec"]["template"]["spec"]
    res = pod["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == 2
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4", "pool": "train"}
    assert pod["priorityClassName"] == "batch-high"
    assert {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "bot-ckpt"}} in pod["volumes"]


def test_multi_node_is_an_indexed_job_with_headless_service() -> None:
    job = CASES["multi-node"]
    train = builders.training_job(job, SETTINGS)
    assert train["spec"]["completionMode"] == "Indexed"
    assert train["spec"]["completions"] == train["spec"]["parallelism"] == 3
    pod = train["spec"]["template"]["spec"]
    n = builders.names(job)
    assert pod["subdomain"] == n["service"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MASTER_ADDR"] == f"{n['train']}-0.{n['service']}" and env["WORLD_SIZE"] == "24"
    kinds = [c["kind"] for c in builders.children(job, SETTINGS)]
    assert "Service" in kinds
    service = builders.workers_service(job, SETTINGS)
    assert service["spec"]["clusterIP"] == "None"


def test_role_only_touches_its_own_finetunejob() -> None:
    role = builders.role(CASES["single-node-cpu"])
    for rule in role["rules"]:
        assert rule["resourceNames"] == ["bot"]
        assert "list" not in rule["verbs"] and "watch" not in rule["verbs"]


def test_every_child_is_owned_and_labelled() -> None:
    job = CASES["multi-node"]
    for child in [*builders.children(job, SETTINGS), builders.training_job(job, SETTINGS)]:
        meta = child["metadata"]
        assert meta["ownerReferences"][0]["uid"] == "0000-1111"
        assert meta["ownerReferences"][0]["controller"] is True
        assert meta["labels"]["kubetune.io/finetunejob"] == "bot"
        assert meta["name"].startswith("bot-")


def test_pods_run_restricted() -> None:
    pod = builders.training_job(CASES["gpu"], SETTINGS)["spec"]["template"]["spec"]
    sc = pod["containers"][0]["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {builders.WORK_DIR, builders.CHECKPOINT_DIR} <= mounts
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["TMPDIR"] == builders.WORK_DIR and env["HOME"] == builders.WORK_DIR  # writable scratch
    assert pod["terminationGracePeriodSeconds"] >= 120


def test_secrets_reach_the_pod_as_env_and_volume() -> None:
    pod = builders.training_job(CASES["secrets"], SETTINGS)["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "token"}
    assert env["KUBETUNE_DATASET_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "s3", "key": "key"}
    assert env["KUBETUNE_REGISTRY"]["value"] == "oci://registry.example.com/ml/bot"
    vol = next(v for v in pod["volumes"] if v["name"] == "registry-auth")
    assert vol["secret"] == {
        "secretName": "reg",
        "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
    }


def test_spec_configmap_round_trips_through_the_models() -> None:
    cm = builders.spec_configmap(CASES["gpu"])
    loaded = FineTuneJob.model_validate(yaml.safe_load(cm["data"]["spec.yaml"]))
    assert loaded.spec == CASES["gpu"].spec


def test_job_without_uid_cannot_be_owned() -> None:
    job = make_job()
    job.metadata.uid = None
    with pytest.raises(ValueError, match=r"no metadata\.uid"):
        builders.spec_configmap(job)


def test_configmap_datasets_are_mounted_read_only_where_the_trainer_looks() -> None:
    job = make_job(
        dataset={"uri": "configmap://tickets/train.jsonl", "validationUri": "configmap://held-out/val.jsonl"}
    )
    pod = builders.training_job(job, SETTINGS)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["KUBETUNE_CONFIGMAP_ROOT"] == builders.CONFIGMAP_ROOT
    for name in ("held-out", "tickets"):
        mount = mounts[f"{builders.CONFIGMAP_ROOT}/{name}"]
        assert mount["readOnly"] is True
        assert volumes[mount["name"]] == {"name": mount["name"], "configMap": {"name": name}}


def test_an_insecure_registry_setting_reaches_the_trainer_for_oci_sources() -> None:
    job = make_job(baseModel={"uri": "oci://registry.test/base/llama:v1"})
    plain = Settings(insecure_registries=("registry.test", "other.test:5000"))
    for settings, expected in ((SETTINGS, None), (plain, "registry.test,other.test:5000")):
        env = builders.training_job(job, settings)["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {e["name"]: e.get("value") for e in env}.get("KUBETUNE_REGISTRY_INSECURE") == expected


def test_a_cache_claim_holds_every_pods_downloads() -> None:
    cached = Settings(cache_claim="model-cache")
    for manifest in (builders.preflight_job(make_job(), cached), builders.training_job(make_job(), cached)):
        pod = manifest["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["HF_HOME"] == f"{builders.CACHE_DIR}/hf"
        assert env["KUBETUNE_SOURCES_DIR"] == f"{builders.CACHE_DIR}/sources"
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == builders.CACHE_DIR)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["persistentVolumeClaim"] == {"claimName": "model-cache"}
    # without one, downloads stay on the pod's own work volume
    pod = builders.training_job(make_job(), SETTINGS)["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["KUBETUNE_SOURCES_DIR"].startswith(builders.WORK_DIR)
    assert all(m["mountPath"] != builders.CACHE_DIR for m in pod["containers"][0]["volumeMounts"])


def test_the_adapter_shows_a_presigned_dataset_url_without_its_signature() -> None:
    url = "https://bucket.example.com/data/train.jsonl?X-Amz-Signature=secret123&X-Amz-Credential=AKIA"
    job = make_job(dataset={"uri": url})
    result = RunResult.model_validate(
        {
            "job": "bot",
            "outcome": "Succeeded",
            "exitCode": 0,
            "lineage": {"dataset": {"sha256": "a" * 64}},
            "gate": {"passed": True, "message": "no gate"},
        }
    )
    adapter = builders.adapter(job, "oci://r.test/ml/bot@sha256:" + "b" * 64, result, "img")
    assert adapter["spec"]["dataset"]["uri"] == "https://bucket.example.com/data/train.jsonl"
    assert "secret123" not in yaml.safe_dump(adapter) and "AKIA" not in yaml.safe_dump(adapter)
    assert adapter["spec"]["sourceJob"]["uid"] == "0000-1111"


def test_every_pod_requests_and_is_limited_to_cpu_and_memory() -> None:
    """A namespace whose ResourceQuota covers cpu or memory refuses pods that leave them out:
    the spec's amounts win, the operator's defaults fill the rest, requests equal limits."""
    settings = Settings(trainer_cpu="6", trainer_memory="40Gi", preflight_cpu="500m", preflight_memory="1Gi")
    for case, job in CASES.items():
        for child in [*builders.children(job, settings), builders.training_job(job, settings)]:
            if child["kind"] != "Job":
                continue
            for c in child["spec"]["template"]["spec"]["containers"]:
                res = c["resources"]
                assert res["requests"] == res["limits"], (case, c["name"])
                assert {"cpu", "memory"} <= set(res["limits"]), (case, c["name"])
    trainer = builders.training_job(CASES["single-node-cpu"], settings)["spec"]["template"]["spec"]
    assert trainer["containers"][0]["resources"]["limits"] == {"cpu": "6", "memory": "40Gi"}
    gpu = builders.training_job(CASES["gpu"], settings)["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"] == {"cpu": 8, "memory": "32Gi", "nvidia.com/gpu": 2}
    preflight = builders.preflight_job(CASES["gpu"], settings)["spec"]["template"]["spec"]
    assert preflight["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}


def test_a_preference_run_registers_its_objective_and_gates_on_preference_accuracy() -> None:
    job = make_job(
        dataset={"uri": "pvc://data/prefs.jsonl", "format": "preference"},
        preference={"loss": "ipo", "beta": 0.5},
        evaluation={
            "metrics": ["loss", "preferenceAccuracy", "rewardMargin"],
            "gate": {"metric": "preferenceAccuracy", "minImprovement": 0.1},
        },
    )
    result = RunResult.model_validate(
        {
            "job": "bot",
            "outcome": "Succeeded",
            "exitCode": 0,
            "lineage": {
                "dataset": {"sha256": "a" * 64, "format": "preference"},
                "preference": {"loss": "ipo", "beta": 0.5},
            },
            "metrics": [
                {"name": "loss", "base": 0.69, "tuned": 0.4, "delta": 0.29},
                {"name": "preferenceAccuracy", "base": 0.5, "tuned": 0.9, "delta": 0.4},
                {"name": "rewardMargin", "base": 0.0, "tuned": 1.2, "delta": 1.2},
            ],
            "gate": {"passed": True, "message": "passed", "metric": "preferenceAccuracy"},
        }
    )
    spec = builders.adapter(job, "oci://r.test/ml/bot@sha256:" + "b" * 64, result, "img")["spec"]
    assert (spec["scorecard"]["primaryMetric"], spec["scorecard"]["primaryValue"]) == (
        "preferenceAccuracy",
        0.9,
    )
    assert [m["name"] for m in spec["scorecard"]["metrics"]] == ["loss", "preferenceAccuracy", "rewardMargin"]
    assert spec["methodConfig"]["preference"] == {"loss": "ipo", "beta": 0.5}
    plain = RunResult.model_validate(
        {**result.model_dump(by_alias=True), "lineage": {"dataset": {"sha256": "a" * 64}}}
    )
    assert (
        "preference"
        not in builders.adapter(job, "oci://r.test/ml/bot@sha256:" + "b" * 64, plain, "img")["spec"][
            "methodConfig"
        ]
    )
