"""The preflight of preference data: a passing report shows the pairs as the model scores them,
and rules that ``format: auto`` hides from the API validation (the rows decide the format) are
enforced here, each naming the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import preflight
from kubetune.trainer import spec as job_spec

from .conftest import memorisable_rows
from .test_preference_tuning import preference_rows


def _report(write_spec: Any, rows: list[dict[str, Any]], spec: dict[str, Any]) -> Any:
    return preflight.run(job_spec.load(write_spec(rows, spec=spec)), cuda=False).report


def test_a_preference_set_passes_and_the_sample_marks_the_chosen_answer(write_spec: Any) -> None:
    rows = preference_rows()[:12]
    report = _report(write_spec, rows, {"dataset": {"format": "auto"}})
    assert report.passed, report.errors
    assert report.format == "preference"
    assert report.sample is not None and "[[ The cat meows." in report.sample
    assert "barks" not in report.sample  # only the chosen side is shown
    # every answer token of both sides carries the loss; the prompts do not
    assert 0 < report.trainable_tokens < report.tokens


@pytest.mark.parametrize(
    ("rows", "spec", "text"),
    [
        (
            preference_rows()[:12],
            {"evaluation": {"metrics": ["loss", "rougeL"]}},
            "spec.evaluation.metrics has ['rougeL'] but the dataset is preference",
        ),
        (
            preference_rows()[:12],
            {"method": {"type": "prompt-tuning"}},
            "spec.method.type prompt-tuning cannot be trained on preference data",
        ),
        (
            preference_rows()[:12],
            {"hyperparameters": {"packing": True}},
            "spec.hyperparameters.packing does not apply to preference data",
        ),
        (
            memorisable_rows(),
            {"preference": {"beta": 0.2}},
            "spec.preference is set but spec.dataset.format is auto and the rows were detected as instruction",
        ),
        (
            memorisable_rows(),
            {"evaluation": {"metrics": ["loss", "preferenceAccuracy"]}},
            "spec.evaluation.metrics has ['preferenceAccuracy'] but the dataset is instruction",
        ),
    ],
    ids=["generation-metric", "prompt-tuning", "packing", "block-without-pairs", "metric-without-pairs"],
)
def test_rules_of_auto_detected_data_fail_the_preflight(
    rows: list[dict[str, Any]], spec: dict[str, Any], text: str, write_spec: Any, tmp_path: Path
) -> None:
    report = _report(write_spec, rows, {**spec, "dataset": {"format": "auto"}})
    assert not report.passed
    assert any(text in e for e in report.errors), report.errors
