"""What the API server does while the webhook does not answer: with ``Fail`` (the chart's
default) every create and update of a kubetune object is refused with a message naming the
webhook; with ``Ignore`` it is admitted unchecked (only the schema and CEL rules still apply)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from admission_helpers import Admission

from kubetune.testing.kube import ApiException, Kube

FTJ = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/finetunejobs"


def job(name: str, **dataset: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            "baseModel": {"uri": "hf://org/model"},
            "dataset": {"uri": "https://data.example/train.jsonl", "format": "instruction", **dataset},
        },
    }


def test_webhook_down_with_fail_refuses_applies_with_a_clear_message(
    admission: Admission, kube: Kube, namespace: str
) -> None:
    kube.create(FTJ.format(ns=namespace), job("while-up"))
    admission.stop()
    with pytest.raises(ApiException) as exc:
        kube.create(FTJ.format(ns=namespace), job("while-down"))
    message = json.loads(exc.value.body)["message"]
    assert exc.value.status == 500, message
    assert 'failed calling webhook "references.kubetune.io"' in message, message
    assert "connection refused" in message, message
    assert kube.get_or_none(FTJ.format(ns=namespace) + "/while-down") is None
    admission.start()
    kube.create(FTJ.format(ns=namespace), job("back-up"))


def test_webhook_down_with_ignore_admits_unchecked(admission: Admission, kube: Kube, namespace: str) -> None:
    admission.stop()
    admission.start(failure_policy="Ignore")
    admission.stop()
    kube.create(FTJ.format(ns=namespace), job("while-down"))
    assert kube.get(FTJ.format(ns=namespace) + "/while-down")
    # the API server's own rules still hold: no token over plain http, webhook or not
    with pytest.raises(ApiException) as exc:
        kube.create(
            FTJ.format(ns=namespace), job("plain", uri="http://d.example/x.jsonl", secretRef={"name": "s"})
        )
    assert exc.value.status == 422
    assert "plain http://" in str(exc.value.body)
    registry_creds = job("plain-registry")
    registry_creds["spec"]["output"] = {"insecure": True, "secretRef": {"name": "reg"}}
    with pytest.raises(ApiException) as exc:
        kube.create(FTJ.format(ns=namespace), registry_creds)
    assert exc.value.status == 422
    assert "would be sent over plain HTTP" in str(exc.value.body)
