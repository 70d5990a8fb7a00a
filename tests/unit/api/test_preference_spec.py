"""spec.preference and preference data: which combinations validate, and the messages (field and
fix) of those that do not; the same rules are CEL rules in the generated CRD."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import errors
from kubetune.api.v1alpha1.finetunejob import FineTuneJob, FineTuneJobSpec
from kubetune.crdgen import generate


def _job(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"baseModel": {"uri": "hf://a/b"}, "dataset": {"uri": "d.jsonl"}}
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "x"},
        "spec": body,
    }


def _problems(obj: dict[str, Any]) -> list[str]:
    return [str(p) for p in errors.validate_manifest(obj)[1]]


@pytest.mark.parametrize("method", ["lora", "dora", "full", "ia3"])
@pytest.mark.parametrize("fmt", ["preference", "auto"])
def test_preference_with_adapter_and_full_methods_validates(method: str, fmt: str) -> None:
    obj = _job(
        dataset={"format": fmt},
        method={"type": method},
        preference={"loss": "ipo", "beta": 0.5},
        evaluation={
            "metrics": ["loss", "preferenceAccuracy", "rewardMargin"],
            "gate": {"metric": "preferenceAccuracy", "minImprovement": 0.1},
        },
    )
    assert _problems(obj) == []
    spec = FineTuneJob.model_validate(obj).spec
    assert spec.preference is not None and spec.preference.loss == "ipo"


def test_defaults_are_dpo_with_beta_0_1() -> None:
    spec = FineTuneJobSpec.model_validate(_job(dataset={"format": "preference"})["spec"])
    assert spec.preference is None
    settings = spec.preference_settings()
    assert (settings.loss, settings.beta, settings.needs_reference) == ("sigmoid", 0.1, True)
    orpo = FineTuneJobSpec.model_validate(_job(preference={"loss": "orpo"})["spec"]).preference_settings()
    assert not orpo.needs_reference


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (
            {"dataset": {"format": "instruction"}, "preference": {}},
            "spec.preference is set but spec.dataset.format is instruction; set spec.dataset.format: preference",
        ),
        (
            {"dataset": {"format": "preference"}, "method": {"type": "prompt-tuning"}},
            "spec.method.type prompt-tuning cannot be trained on preference data",
        ),
        (
            {"preference": {}, "method": {"type": "prefix-tuning"}},
            "spec.method.type prefix-tuning cannot be trained on preference data",
        ),
        (
            {"dataset": {"format": "preference"}, "hyperparameters": {"packing": True}},
            "spec.hyperparameters.packing does not apply to preference data",
        ),
        (
            {"dataset": {"format": "preference"}, "evaluation": {"metrics": ["loss", "rougeL"]}},
            "spec.evaluation.metrics has ['rougeL'] but spec.dataset.format is preference",
        ),
        (
            {"dataset": {"format": "chat"}, "evaluation": {"metrics": ["preferenceAccuracy"]}},
            "spec.evaluation.metrics has ['preferenceAccuracy'] but spec.dataset.format is chat",
        ),
        ({"preference": {"beta": 0}}, "spec.preference.beta: must be > 0"),
        ({"preference": {"loss": "kto"}}, "spec.preference.loss: must be one of 'sigmoid'"),
    ],
)
def test_bad_combinations_name_the_field_and_the_fix(spec: dict[str, Any], text: str) -> None:
    problems = _problems(_job(**spec))
    assert len(problems) == 1, problems
    assert text in problems[0], problems[0]


def test_the_crd_enforces_the_rules_with_the_same_messages() -> None:
    crd = generate.crd(FineTuneJob)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = {r["fieldPath"]: r for r in schema["x-kubernetes-validations"] if "fieldPath" in r}
    assert "self.dataset.format in ['auto', 'preference']" in rules[".preference"]["rule"]
    assert "'full']" in rules[".method.type"]["rule"]
    assert "!self.hyperparameters.packing" in rules[".hyperparameters.packing"]["rule"]
    assert (
        "preferenceAccuracy" in schema["properties"]["evaluation"]["properties"]["metrics"]["items"]["enum"]
    )
    assert schema["properties"]["dataset"]["properties"]["format"]["enum"][-1] == "preference"
    assert schema["properties"]["preference"]["properties"]["beta"]["description"]
