"""FineTuneJob -> Adapter in the cluster path: the training pod pushes the adapter to
``spec.output.repository`` (``KUBETUNE_REGISTRY``), reports the digest-pinned reference in its
result, and the operator registers an Adapter pinned to that digest."""

from __future__ import annotations

import re
from pathlib import Path

from ftj_helpers import FTJ, condition, dump, lora_job, phase_is

from kubetune import registry
from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

ADAPTERS = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/adapters"


def test_succeeded_lora_job_pushes_and_registers_a_candidate_adapter(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    adapter_registry: str,
    operator: kubetune_operator.Operator,
    tmp_path: Path,
) -> None:
    repository = f"{adapter_registry}/team/bot"
    remote = repository.startswith("oci://")
    output = {"repository": repository, "tag": "v1", **({"insecure": True} if remote else {})}
    kube.create(FTJ.format(ns=namespace), lora_job("bot", output=output))
    obj = wait_for(lambda: phase_is(kube, namespace, "bot", "Succeeded", "Failed"), 180, "bot finished")
    status = obj["status"]
    assert status["phase"] == "Succeeded", dump(obj)
    adapter_ref = status.get("adapter") or {}
    ref = adapter_ref.get("ref", "")
    assert re.fullmatch(re.escape(repository) + r"@sha256:[0-9a-f]{64}", ref), dump(obj)
    assert adapter_ref.get("name") == "bot", dump(obj)
    succeeded = condition(obj, "Succeeded")
    assert succeeded is not None and succeeded["reason"] == "AdapterRegistered", dump(obj)

    adapter = wait_for(
        lambda: kube.get_or_none(ADAPTERS.format(ns=namespace) + "/bot"), 30, "Adapter bot created"
    )
    assert adapter["spec"]["ref"] == ref, adapter
    assert adapter["spec"]["method"] == "lora"
    assert re.fullmatch(r"[0-9a-f]{64}", adapter["spec"]["dataset"]["sha256"]), adapter["spec"]
    assert adapter["spec"]["sourceJob"]["name"] == "bot"
    # The status subresource is written after creation: a registered Adapter is a candidate.
    adapter = wait_for(
        lambda: (
            (a := kube.get_or_none(ADAPTERS.format(ns=namespace) + "/bot"))
            and (a.get("status") or {}).get("state")
            and a
        ),
        30,
        "Adapter bot has status.state",
    )
    assert adapter["status"]["state"] == "candidate", adapter.get("status")

    pulled = tmp_path / "pulled"
    options = registry.Options(insecure=True) if remote else None
    assert registry.pull(ref, pulled, options=options) == ref
    assert (pulled / "adapter_config.json").is_file()
    assert (pulled / "adapter_model.safetensors").is_file()
    assert registry.resolve(f"{repository}:v1", options=options) == ref.rsplit("@", 1)[1]
