"""Broken manifests are reported precisely: the field path, the reason and the line."""

from pathlib import Path

import pytest

from kubetune.api import errors
from kubetune.cli import manifests

BROKEN = Path(__file__).resolve().parents[1] / "testdata" / "broken"

# file -> (line, substring of the one problem expected)
EXPECTED = {
    "missing-base-model.yaml": (5, "spec.baseModel: is required"),
    "lora-rank-zero.yaml": (11, "spec.method.lora.r: must be >= 1 (got 0)"),
    "negative-learning-rate.yaml": (9, "spec.hyperparameters.learningRate: must be > 0"),
    "unknown-method.yaml": (9, "spec.method.type: must be one of 'lora'"),
    "zero-nodes.yaml": (9, "spec.resources.numNodes: must be >= 1 (got 0)"),
    "gpus-as-word.yaml": (9, "spec.resources.gpusPerNode: must be a whole number (got 'two')"),
    "validation-split-above-one.yaml": (9, "spec.dataset.validationSplit: must be < 1.0 (got 1.5)"),
    "canary-weight-above-100.yaml": (10, "spec.rollout.steps[1].setWeight: must be <= 100 (got 150)"),
    "misspelled-field.yaml": (9, "unknown field 'learningrate' (likely a typo of 'learningRate')"),
    "lora-block-with-full.yaml": (8, "spec.method.lora is set but spec.method.type is 'full'"),
}


def test_every_broken_file_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_manifest_reports_one_precise_problem(name: str) -> None:
    line, text = EXPECTED[name]
    (doc,) = manifests.read(str(BROKEN / name))
    kind, problems = errors.validate_manifest(doc.obj)
    assert kind is not None
    assert len(problems) == 1, [str(p) for p in problems]
    assert text in str(problems[0])
    assert doc.line_of(problems[0].loc) == line


def test_unknown_field_far_from_any_name_lists_the_valid_ones() -> None:
    obj = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "x"},
        "spec": {"baseModel": {"uri": "hf://a/b"}, "dataset": {"uri": "d.jsonl"}, "zzz": 1},
    }
    _, problems = errors.validate_manifest(obj)
    assert len(problems) == 1
    assert "unknown field 'zzz'; fields here are baseModel, dataset" in str(problems[0])


def test_wrong_api_version_and_unknown_kind_are_named() -> None:
    _, problems = errors.validate_manifest({"apiVersion": "kubetune.io/v1", "kind": "FineTuneJob"})
    assert "'kubetune.io/v1' is not served; write kubetune.io/v1alpha1" in str(problems[0])
    _, problems = errors.validate_manifest({"apiVersion": "kubetune.io/v1alpha1", "kind": "TrainJob"})
    assert "unknown kind 'TrainJob'" in str(problems[0])


def test_other_api_groups_are_skipped() -> None:
    assert errors.validate_manifest({"apiVersion": "v1", "kind": "Secret"}) == (None, [])


def test_missing_name_is_reported() -> None:
    obj = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "spec": {"baseModel": {"uri": "hf://a/b"}, "dataset": {"uri": "d.jsonl"}},
    }
    _, problems = errors.validate_manifest(obj)
    assert [p.path for p in problems] == ["metadata.name"]


def test_bad_quantity_and_uri_say_what_to_write() -> None:
    obj = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "x"},
        "spec": {
            "baseModel": {"uri": "ftp://nope"},
            "dataset": {"uri": "d.jsonl"},
            "resources": {"memory": "lots"},
        },
    }
    _, problems = errors.validate_manifest(obj)
    text = "\n".join(str(p) for p in problems)
    assert "spec.baseModel.uri: 'ftp://nope' is not valid: write hf://org/name" in text
    assert "spec.resources.memory:" in text and "not a Kubernetes quantity" in text
