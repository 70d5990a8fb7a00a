"""A local run records every held-out generation it scored, base and tuned side by side, in
``samples.jsonl`` next to the artifacts and inside the adapter directory (so a pushed adapter
carries it), and ``kubetune review export`` builds a blind review from that run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import result, samples
from kubetune.cli import main as cli
from kubetune.review import blind
from kubetune.trainer import metrics


def test_run_writes_base_and_tuned_answers_and_review_exports_them(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(
        spec={"evaluation": {"metrics": ["loss", "rougeL"], "maxSamples": 5, "maxNewTokens": 6}}
    )
    out = tmp_path / "out"
    assert cli.main(["run", str(spec), "--output", str(out), "--progress", "none", "--no-push"]) == 0
    rows = samples.read(out / samples.FILENAME)
    assert [r.index for r in rows] == [0, 1, 2, 3, 4]  # maxSamples of the 6 validation rows
    assert all(r.base is not None and r.prompt and r.reference for r in rows)
    # these are the very answers the run's ROUGE-L scored, for both models
    rouge = next(m for m in result.read(out).metrics if m.name == "rougeL")
    refs = [r.reference for r in rows]
    assert metrics.mean_rouge_l([r.tuned for r in rows], refs) == pytest.approx(rouge.tuned, abs=1e-6)
    assert metrics.mean_rouge_l([r.base or "" for r in rows], refs) == pytest.approx(rouge.base, abs=1e-6)
    assert [r.tuned for r in rows] != [r.base for r in rows]
    assert (out / "adapter" / samples.FILENAME).read_bytes() == (out / samples.FILENAME).read_bytes()
    # the summary's five samples are the first rows of the file
    summary = json.loads((out / "result.json").read_text(encoding="utf-8"))["samples"]
    assert [s["prediction"] for s in summary] == [r.tuned for r in rows]

    export = tmp_path / "review"
    assert cli.main(["review", "export", str(out), "--seed", "3", "--out", str(export)]) == 0
    key = blind.Key.model_validate_json((export / blind.KEY_FILE).read_text(encoding="utf-8"))
    assert sorted(e.index for e in key.items) == [0, 1, 2, 3, 4]
    items = [
        json.loads(line) for line in (export / blind.ITEMS_FILE).read_text(encoding="utf-8").splitlines()
    ]
    by_index = {r.index: r for r in rows}
    for item, entry in zip(items, key.items, strict=True):
        row = by_index[entry.index]
        assert item[entry.tuned] == row.tuned and item["prompt"] == row.prompt
