"""Chat, completion, text and JSON-array data train end to end on the tiny Llama: the loss
falls, generation formats are scored by ROUGE-L/BLEU/exact match, text only by loss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import pipeline, progress
from kubetune.trainer import spec as job_spec

from .conftest import ANIMALS, SOUNDS


def _rows(fmt: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for animal, sound in zip(ANIMALS, SOUNDS, strict=True):
        if fmt == "chat":
            out.append(
                {
                    "messages": [
                        {"role": "system", "content": "Answer briefly."},
                        {"role": "user", "content": f"What does the {animal} say?"},
                        {"role": "assistant", "content": f"The {animal} {sound}."},
                    ]
                }
            )
        elif fmt == "completion":
            out.append({"prompt": f"The {animal} says:", "completion": f" it {sound}."})
        else:
            out.append({"text": f"The {animal} {sound}. It is the {animal} that {sound}."})
    return out * 2


@pytest.mark.parametrize("fmt", ["chat", "completion", "text"])
def test_format_trains_and_is_scored(fmt: str, write_spec: Any, tmp_path: Path) -> None:
    metrics = ["loss", "rougeL", "bleu", "exactMatch"] if fmt != "text" else ["loss", "perplexity"]
    spec = {"dataset": {"format": "auto"}, "evaluation": {"metrics": metrics}}
    job = job_spec.load(write_spec(_rows(fmt), spec=spec, name=fmt))
    sink = progress.ListSink()
    result = pipeline.run(job, pipeline.Options(output_dir=tmp_path / "out"), sink)
    assert result.outcome == "Succeeded", result.message
    assert result.preflight is not None and result.preflight.format == fmt
    steps = [e for e in sink.events if isinstance(e, progress.ProgressEvent)]
    assert steps[-1].loss < steps[0].loss - 1.0
    names = {m.name for m in result.metrics}
    assert names == set(metrics)
    if fmt != "text":
        assert 0.0 <= next(m.tuned for m in result.metrics if m.name == "rougeL") <= 1.0
        assert result.samples and result.samples[0]["reference"]


def test_json_array_files_read_like_jsonl(write_spec: Any, tmp_path: Path) -> None:
    lines = write_spec(name="lines")
    rows = [json.loads(line) for line in (lines.parent / "train.jsonl").read_text().splitlines()]
    array = write_spec(rows, spec={"dataset": {"uri": "./train.json"}}, name="array")
    (array.parent / "train.json").write_text(json.dumps(rows, indent=2))
    (array.parent / "train.jsonl").unlink()
    a = pipeline.run(
        job_spec.load(array), pipeline.Options(output_dir=tmp_path / "a", dry_run=True), progress.NullSink()
    )
    b = pipeline.run(
        job_spec.load(lines), pipeline.Options(output_dir=tmp_path / "b", dry_run=True), progress.NullSink()
    )
    assert a.outcome == b.outcome == "DryRunComplete"
    assert a.preflight is not None and a.preflight.rows == 24
    assert a.preflight.model_dump() == b.preflight.model_dump()  # type: ignore[union-attr]
