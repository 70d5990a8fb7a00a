"""The README's quickstart: docs/examples/quickstart (dataset from its generator, a tiny demo
model built the documented way) trains on CPU and the tuned model beats the base on held-out
loss, ROUGE-L and exact match, passing the example's gate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubetune.trainer import pipeline, progress, tiny
from kubetune.trainer import spec as job_spec

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "quickstart"


def test_dataset_generator_reproduces_the_checked_in_file(tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_dataset.py"), "--out", str(out)], check=True, capture_output=True
    )
    assert out.read_bytes() == (EXAMPLE / "train.jsonl").read_bytes()


def test_quickstart_tunes_the_demo_model_past_its_base(tmp_path: Path) -> None:
    model = tiny.build(tmp_path / "models" / "tiny-llama", EXAMPLE / "train.jsonl", hidden=128)
    body = yaml.safe_load((EXAMPLE / "finetunejob.yaml").read_text())
    assert body["spec"]["baseModel"]["uri"] == "../../../.kubetune/models/tiny-llama"
    body["spec"]["baseModel"]["uri"] = str(model)
    shutil.copy(EXAMPLE / "train.jsonl", tmp_path / "train.jsonl")
    spec = tmp_path / "finetunejob.yaml"
    spec.write_text(yaml.safe_dump(body))

    result = pipeline.run(
        job_spec.load(spec), pipeline.Options(output_dir=tmp_path / "out"), progress.NullSink()
    )
    assert result.outcome == "Succeeded", result.message
    scores = {m.name: m for m in result.metrics}
    assert scores["loss"].base is not None and scores["loss"].tuned < 0.5 * scores["loss"].base
    assert scores["rougeL"].tuned > 0.8 > 0.2 > (scores["rougeL"].base or 0.0)
    assert scores["exactMatch"].tuned >= 0.5
    assert result.gate is not None and result.gate.passed
