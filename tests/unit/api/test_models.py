"""API models: camelCase on the wire, sane defaults, cross-field rules with actionable messages."""

from typing import Any

import pytest
from pydantic import ValidationError

from kubetune.api.v1alpha1 import FineTuneJob, ModelDeployment
from kubetune.api.v1alpha1.base import parse_duration
from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec


def job(**spec: Any) -> dict[str, Any]:
    base = {"baseModel": {"uri": "hf://org/model"}, "dataset": {"uri": "train.jsonl"}}
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "j"},
        "spec": {**base, **spec},
    }


def test_minimal_job_gets_defaults_and_round_trips_in_camel_case() -> None:
    parsed = FineTuneJob.model_validate(job())
    assert parsed.spec.method.type == "lora"
    assert parsed.spec.hyperparameters.learning_rate == pytest.approx(2e-4)
    wire = parsed.to_wire()
    assert wire["spec"]["hyperparameters"]["learningRate"] == pytest.approx(2e-4)
    assert "learning_rate" not in str(wire)
    assert FineTuneJob.model_validate(wire) == parsed


def test_strings_are_not_numbers_as_on_the_api_server() -> None:
    with pytest.raises(ValidationError):
        FineTuneJob.model_validate(job(resources={"gpusPerNode": "2"}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"method": {"type": "full", "lora": {"r": 8}}},
            "spec.method.lora is set but spec.method.type is 'full'",
        ),
        ({"method": {"type": "ia3", "promptTuning": {}}}, "spec.method.promptTuning is set"),
        (
            {"evaluation": {"metrics": ["loss"], "gate": {"metric": "rougeL"}}},
            "spec.evaluation.gate.metric is 'rougeL' but spec.evaluation.metrics",
        ),
        (
            {"evaluation": {"compareToBase": False, "gate": {"metric": "loss", "minImprovement": 0.1}}},
            "compareToBase is false",
        ),
        ({"method": {"type": "qlora"}, "resources": {"gpusPerNode": 0}}, "qlora needs a CUDA GPU"),
        (
            {
                "dataset": {"uri": "d.jsonl", "format": "classification"},
                "evaluation": {"metrics": ["rougeL"]},
            },
            "use accuracy and f1 for classification",
        ),
        (
            {"dataset": {"uri": "d.jsonl", "format": "chat"}, "evaluation": {"metrics": ["accuracy"]}},
            "need spec.dataset.format: classification",
        ),
    ],
)
def test_cross_field_rules_name_the_field_and_the_fix(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        FineTuneJob.model_validate(job(**spec))
    assert message in str(info.value)


def test_dora_and_qlora_accept_the_lora_block() -> None:
    for method in ("dora", "qlora"):
        parsed = FineTuneJobSpec.model_validate(job(method={"type": method, "lora": {"r": 4}})["spec"])
        assert parsed.method.lora_settings().r == 4


def md(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": {"baseModel": {"uri": "hf://a/b"}, **spec},
    }


def test_modeldeployment_default_rollout_has_analysis_between_weights() -> None:
    parsed = ModelDeployment.model_validate(md())
    weights = [s.set_weight for s in parsed.spec.rollout.steps if s.set_weight is not None]
    assert weights == [10, 50, 100]
    assert sum(s.analysis is not None for s in parsed.spec.rollout.steps) == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"rollout": {"steps": [{"setWeight": 50}, {"setWeight": 20}]}}, "weights must not decrease"),
        (
            {"rollout": {"steps": [{"setWeight": 50, "pause": {}}]}},
            "exactly one of setWeight, pause, analysis or experiment",
        ),
        ({"adapters": [{"name": "a"}]}, "set exactly one of adapter"),
        ({"adapters": [{"name": "a", "adapter": "x"}, {"name": "a", "adapter": "y"}]}, "is used twice"),
        ({"rollout": {"analysis": {"interval": "5m", "window": "1m"}}}, "is shorter than interval"),
        ({"rollout": {"analysis": {"interval": "soon"}}}, "interval"),
        (
            {"runtime": {"maxInputTokens": 4096, "maxTotalTokens": 1024}},
            "must be below spec.runtime.maxTotalTokens",
        ),
        ({"runtime": {"quantize": "int4"}}, "bitsandbytes"),
    ],
)
def test_modeldeployment_rules(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        ModelDeployment.model_validate(md(**spec))
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25)])
def test_durations_parse_like_go(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")


def test_metric_verdict_turns_promql_nan_and_inf_into_no_value() -> None:
    from kubetune.api.v1alpha1.modeldeployment import MetricVerdict

    v = MetricVerdict(name="errorRate", verdict="Inconclusive", canary=float("nan"), stable=float("inf"))
    assert v.canary is None and v.stable is None
    assert MetricVerdict(name="x", verdict="Pass", canary=0.5).canary == 0.5
