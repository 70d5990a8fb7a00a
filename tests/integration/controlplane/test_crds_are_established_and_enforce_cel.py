"""The generated CRDs load into a real kube-apiserver, and their CEL rules are enforced there."""

from __future__ import annotations

import json

import pytest
import yaml

from kubetune.testing import Cluster, CrdReport
from kubetune.testing.kube import ApiException, Kube

pytestmark = pytest.mark.timeout(90)

FTJ_PATH = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/finetunejobs"


def _finetunejob(name: str, namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"baseModel": {"uri": "hf://org/model"}, "dataset": {"uri": "file:///data/train.jsonl"}},
    }


@pytest.fixture
def finetunejobs(kubetune_crds: CrdReport) -> None:
    if "finetunejobs.kubetune.io" not in kubetune_crds.installed:
        pytest.fail(f"finetunejobs.kubetune.io is not installed; rejected CRDs: {kubetune_crds.rejected}")


def test_every_crd_in_crds_dir_is_accepted_and_established(kubetune_crds: CrdReport, kube: Kube) -> None:
    files = kubetune_crds.files
    assert files, "crds/ holds no *.yaml; run the CRD generator"
    expected = {
        doc["metadata"]["name"]
        for f in files
        for doc in yaml.safe_load_all(f.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    }
    assert kubetune_crds.rejected == {}
    for name in sorted(expected):
        crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", (name, conditions)


def test_changing_base_model_is_rejected_through_the_python_client(
    finetunejobs: None, kube: Kube, namespace: str
) -> None:
    kube.create(FTJ_PATH.format(ns=namespace), _finetunejob("immutable-py", namespace))
    path = FTJ_PATH.format(ns=namespace) + "/immutable-py"
    with pytest.raises(ApiException) as caught:
        kube.patch(path, {"spec": {"baseModel": {"uri": "hf://org/other-model"}}})
    assert caught.value.status == 422
    message = json.loads(caught.value.body or "{}")["message"]
    assert "immutable" in message, message
    assert kube.get(path)["spec"]["baseModel"]["uri"] == "hf://org/model"


def test_changing_base_model_is_rejected_through_kubectl_apply(
    finetunejobs: None, cluster: Cluster, namespace: str
) -> None:
    manifest = _finetunejob("immutable-kubectl", namespace)
    created = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert created.returncode == 0, created.stderr
    spec = manifest["spec"]
    assert isinstance(spec, dict)
    spec["baseModel"] = {"uri": "hf://org/other-model"}
    changed = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert changed.returncode != 0
    assert "immutable" in changed.stderr, changed.stderr


def test_a_valid_finetunejob_is_accepted_and_listed_by_short_name(
    finetunejobs: None, cluster: Cluster, namespace: str
) -> None:
    created = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_finetunejob("valid", namespace)))
    assert created.returncode == 0, created.stderr
    listed = cluster.kubectl("get", "ftj", "-n", namespace, "-o", "name")
    assert listed.stdout.strip() == "finetunejob.kubetune.io/valid", listed


def test_method_block_mismatch_is_rejected_with_the_rule_message(
    finetunejobs: None, kube: Kube, namespace: str
) -> None:
    job = _finetunejob("mismatch", namespace)
    job["spec"] = {**job["spec"], "method": {"type": "full", "lora": {"r": 8}}}  # type: ignore[dict-item]
    with pytest.raises(ApiException) as caught:
        kube.create(FTJ_PATH.format(ns=namespace), job)
    assert caught.value.status == 422
    message = json.loads(caught.value.body or "{}")["message"]
    assert "spec.method.lora is set but spec.method.type is not lora or dora or qlora" in message, message


def test_api_server_applies_the_model_defaults(finetunejobs: None, kube: Kube, namespace: str) -> None:
    stored = kube.create(FTJ_PATH.format(ns=namespace), _finetunejob("defaults", namespace))
    spec = stored["spec"]
    assert spec["method"]["type"] == "lora"
    assert spec["hyperparameters"]["learningRate"] == pytest.approx(2e-4)
    assert spec["dataset"]["format"] == "auto"


def test_modeldeployment_step_rules_are_enforced(
    kubetune_crds: CrdReport, kube: Kube, namespace: str
) -> None:
    path = f"/apis/kubetune.io/v1alpha1/namespaces/{namespace}/modeldeployments"

    def mdep(name: str, steps: list[dict[str, object]]) -> dict[str, object]:
        return {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"baseModel": {"uri": "hf://org/model"}, "rollout": {"steps": steps}},
        }

    with pytest.raises(ApiException) as caught:
        kube.create(path, mdep("two-actions", [{"setWeight": 10, "pause": {}}]))
    assert "exactly one of setWeight, pause, analysis or experiment" in (caught.value.body or "")
    with pytest.raises(ApiException) as caught:
        kube.create(path, mdep("too-heavy", [{"setWeight": 150}]))
    assert "setWeight" in (caught.value.body or "") and "100" in (caught.value.body or "")
    stored = kube.create(path, mdep("ok", [{"setWeight": 10}, {"analysis": {}}, {"setWeight": 100}]))
    assert stored["spec"]["rollout"]["steps"][1] == {"analysis": {"intervals": 1}}


def test_experiment_steps_and_rate_metrics_pass_the_api_server_and_mixed_metrics_do_not(
    kubetune_crds: CrdReport, kube: Kube, namespace: str
) -> None:
    path = f"/apis/kubetune.io/v1alpha1/namespaces/{namespace}/modeldeployments"

    def mdep(name: str, metric: dict[str, object]) -> dict[str, object]:
        rollout = {
            "steps": [{"setWeight": 50}, {"experiment": {"duration": "1h"}}, {"setWeight": 100}],
            "analysis": {"judge": "statistical", "metrics": [{"name": "thumbsUp", **metric}]},
        }
        return {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"baseModel": {"uri": "hf://org/model"}, "rollout": rollout},
        }

    rate = {"rate": {"events": "sum(up)", "total": "sum(up)"}}
    stored = kube.create(path, mdep("ab", rate))
    analysis = stored["spec"]["rollout"]["analysis"]
    assert analysis["confidence"] == 0.99 and analysis["metrics"][0]["rate"]["better"] == "higher"
    assert stored["spec"]["rollout"]["steps"][1] == {"experiment": {"duration": "1h", "decision": "manual"}}
    with pytest.raises(ApiException) as caught:
        kube.create(path, mdep("both", {**rate, "query": "x", "threshold": {"max": 1}}))
    assert "set exactly one of query (with threshold) or rate" in (caught.value.body or "")
    with pytest.raises(ApiException) as caught:
        kube.create(path, mdep("no-threshold", {"query": "x"}))
    assert "query and threshold go together" in (caught.value.body or "")


def test_preference_rules_are_enforced_by_the_api_server(
    finetunejobs: None, kube: Kube, namespace: str
) -> None:
    def job(name: str, **spec: object) -> dict[str, object]:
        body = _finetunejob(name, namespace)
        body["spec"] = {**body["spec"], **spec}  # type: ignore[dict-item]
        return body

    def rejected(body: dict[str, object]) -> str:
        with pytest.raises(ApiException) as caught:
            kube.create(FTJ_PATH.format(ns=namespace), body)
        assert caught.value.status == 422
        return str(json.loads(caught.value.body or "{}")["message"])

    message = rejected(
        job(
            "pref-format",
            dataset={"uri": "file:///d.jsonl", "format": "instruction"},
            preference={"beta": 0.1},
        )
    )
    assert "spec.preference is set but spec.dataset.format is neither preference nor auto" in message, message
    message = rejected(
        job(
            "pref-method",
            dataset={"uri": "file:///d.jsonl", "format": "preference"},
            method={"type": "prefix-tuning"},
        )
    )
    assert "cannot be trained on preference data" in message, message
    message = rejected(job("pref-packing", preference={}, hyperparameters={"packing": True}))
    assert "spec.hyperparameters.packing does not apply to preference data" in message, message
    message = rejected(job("pref-beta", preference={"beta": 0}))
    assert "spec.preference.beta" in message, message
    stored = kube.create(
        FTJ_PATH.format(ns=namespace),
        job(
            "pref-ok",
            dataset={"uri": "file:///d.jsonl", "format": "preference"},
            method={"type": "dora"},
            preference={"loss": "ipo"},
            evaluation={"metrics": ["loss", "preferenceAccuracy"], "gate": {"metric": "preferenceAccuracy"}},
        ),
    )
    assert stored["spec"]["preference"] == {"loss": "ipo", "beta": 0.1}


def test_each_engines_fields_are_refused_for_the_other_engine_by_the_api_server(
    kubetune_crds: CrdReport, kube: Kube, namespace: str
) -> None:
    path = f"/apis/kubetune.io/v1alpha1/namespaces/{namespace}/modeldeployments"

    def mdep(name: str, runtime: dict[str, object]) -> dict[str, object]:
        return {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"baseModel": {"uri": "hf://org/model"}, "runtime": runtime},
        }

    for name, runtime, message in (
        (
            "vllm-tgi-field",
            {"engine": "vllm", "maxTotalTokens": 64},
            "spec.runtime.maxTotalTokens is a TGI setting",
        ),
        ("tgi-vllm-field", {"maxModelLen": 256}, "spec.runtime.maxModelLen is a vLLM setting"),
    ):
        with pytest.raises(ApiException) as caught:
            kube.create(path, mdep(name, runtime))
        assert message in (caught.value.body or ""), caught.value.body
    stored = kube.create(path, mdep("vllm", {"engine": "vllm", "maxModelLen": 256, "maxNumSeqs": 8}))
    assert stored["spec"]["runtime"]["engine"] == "vllm"
    assert "image" not in stored["spec"]["runtime"]  # the engine's default, chosen by the operator
    assert kube.create(path, mdep("tgi", {}))["spec"]["runtime"]["engine"] == "tgi"
