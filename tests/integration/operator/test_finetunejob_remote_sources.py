"""Sources the training pods fetch or get mounted: a base model stored as an OCI artifact in a
real registry (named by tag, pinned by digest in the lineage) and a dataset in a ConfigMap
(``configmap://name/key``, mounted by the operator). The job trains, and the Adapter it
registers records the base model's digest. With the operator's cache claim, a second job
naming the same digest trains from the cache without reaching any registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ftj_helpers import FTJ, dump, lora_job, make_claim, phase_is

from kubetune import registry
from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.settings import Settings
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

ADAPTERS = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/adapters"
CACHE = "model-cache"


@pytest.fixture
def operator_settings(adapter_registry: str) -> Settings:
    return Settings(
        insecure_registries=(adapter_registry.removeprefix("oci://"),),
        cache_claim=CACHE,
        default_registry=f"{adapter_registry}/adapters",
    )


def test_oci_base_model_and_configmap_dataset_train_and_pin_the_model_digest(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    adapter_registry: str,
    operator: kubetune_operator.Operator,
) -> None:
    if not adapter_registry.startswith("oci://"):
        pytest.skip("needs the docker-registry binary (Debian package docker-registry)")
    insecure = registry.Options(insecure=True)
    config = registry.ArtifactConfig(kind="merged", base_model={"uri": "tiny-llama"}, method="full")
    base_ref = registry.push_directory(
        data_pvc / "model", f"{adapter_registry}/base/tiny:v1", config, options=insecure
    )
    digest = base_ref.rsplit("@", 1)[1]
    cache = make_claim(kube, namespace, CACHE)
    kube.create(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tickets"},
            "data": {"train.jsonl": (data_pvc / "train.jsonl").read_text()},
        },
    )
    body = lora_job(
        "remote",
        dataset="configmap://tickets/train.jsonl",
        baseModel={"uri": f"{adapter_registry}/base/tiny:v1"},
        output={"repository": f"{adapter_registry}/team/remote", "tag": "v1", "insecure": True},
    )
    kube.create(FTJ.format(ns=namespace), body)
    obj = wait_for(lambda: phase_is(kube, namespace, "remote", "Succeeded", "Failed"), 180, "remote finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
    assert obj["status"]["preflight"]["rows"] == len((data_pvc / "train.jsonl").read_text().splitlines())

    adapter = wait_for(
        lambda: kube.get_or_none(ADAPTERS.format(ns=namespace) + "/remote"), 30, "Adapter remote created"
    )
    assert adapter["spec"]["baseModel"]["revision"] == digest, adapter["spec"]
    assert re.fullmatch(r"[0-9a-f]{64}", adapter["spec"]["dataset"]["sha256"])
    cached = cache / "sources" / "oci" / digest.replace(":", "-")
    assert (cached / "config.json").is_file()

    # the same digest behind a registry that does not answer: only the cache can serve it
    gone = f"oci://127.0.0.1:9/base/tiny@{digest}"
    again = lora_job("again", dataset="configmap://tickets/train.jsonl", baseModel={"uri": gone})
    kube.create(FTJ.format(ns=namespace), again)
    obj = wait_for(lambda: phase_is(kube, namespace, "again", "Succeeded", "Failed"), 180, "again finished")
    assert obj["status"]["phase"] == "Succeeded", dump(obj)
