"""Names the API accepts but the children cannot carry: refused by the API server up front, and
a child the API server refuses anyway ends the job as InvalidSpec instead of a silent retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftj_helpers import FTJ, child_names, condition, dump, lora_job, phase_is

from kubetune.api.v1alpha1 import names
from kubetune.controllers import operator as kubetune_operator
from kubetune.testing import CrdReport
from kubetune.testing.kube import ApiException, Kube
from kubetune.testing.waiting import wait_for

MDEP = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/modeldeployments"
REF = "oci://registry.test/ml/a@sha256:" + "a" * 64


def _refusal(kube: Kube, path: str, body: dict[str, object]) -> str:
    with pytest.raises(ApiException) as caught:
        kube.create(path, body)
    assert caught.value.status == 422, caught.value.body
    return str(json.loads(caught.value.body or "{}")["message"])


def _mdep(name: str, adapter: str = "support-bot") -> dict[str, object]:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"baseModel": {"uri": "hf://org/model"}, "adapters": [{"name": adapter, "ref": REF}]},
    }


def test_the_api_server_refuses_names_the_children_cannot_carry(
    kubetune_crds: CrdReport, kube: Kube, namespace: str
) -> None:
    assert kubetune_crds.rejected == {}, kubetune_crds.rejected
    longest = "a" * names.FINETUNEJOB.max_length
    too_long = _refusal(kube, FTJ.format(ns=namespace), lora_job(longest + "b"))
    assert "metadata.name" in too_long and f"at most {names.FINETUNEJOB.max_length} characters" in too_long
    dotted = _refusal(kube, FTJ.format(ns=namespace), lora_job("support.bot"))
    assert "metadata.name" in dotted and "no '.'" in dotted, dotted
    kube.create(FTJ.format(ns=namespace), lora_job(longest, suspend=True))  # the limit itself is fine

    md_long = _refusal(kube, MDEP.format(ns=namespace), _mdep("m" * (names.MODELDEPLOYMENT.max_length + 1)))
    assert "metadata.name" in md_long and "<name>-canary" in md_long, md_long
    md_dotted = _refusal(kube, MDEP.format(ns=namespace), _mdep("chat.v2"))
    assert "metadata.name" in md_dotted and "no '.'" in md_dotted, md_dotted
    adapter = _refusal(kube, MDEP.format(ns=namespace), _mdep("chat", adapter="support.bot"))
    assert "spec.adapters[0].name" in adapter and "pull-adapter-<name>" in adapter, adapter
    kube.create(MDEP.format(ns=namespace), _mdep("m" * names.MODELDEPLOYMENT.max_length))


def test_a_child_the_api_server_refuses_fails_the_job_as_invalid_spec_with_its_message(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> None:
    # A Secret name no pod may reference: the CRD has no rule for it, the Job's pod template does.
    body = lora_job("badsecret", baseModel={"uri": "pvc://data/model", "secretRef": {"name": "Not_A_Name"}})
    kube.create(FTJ.format(ns=namespace), body)
    obj = wait_for(
        lambda: phase_is(kube, namespace, "badsecret", "Failed", "Succeeded"), 60, "badsecret failed"
    )
    failed = condition(obj, "Failed")
    assert failed is not None and failed["reason"] == "InvalidSpec", dump(obj)
    message = failed["message"]
    assert message.startswith(
        f"the API server refused Job {namespace}/{child_names(kube, namespace, 'badsecret')['preflight']}: "
    ), message
    assert "secretKeyRef.name" in message and "Not_A_Name" in message, message
    assert kube.list(f"/apis/batch/v1/namespaces/{namespace}/jobs") == []
