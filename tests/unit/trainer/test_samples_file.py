"""``samples.jsonl``: base and tuned answers matched by prompt position, copied into each artifact
directory; a base-score cache from before the file existed (no generations) leaves base unset."""

from __future__ import annotations

from pathlib import Path

from kubetune.api.contract import samples
from kubetune.api.contract.result import Artifacts
from kubetune.trainer import evaluate, export


def scores(*rows: tuple[str, str]) -> evaluate.Scores:
    return evaluate.Scores(
        values={}, generations=[{"prompt": p, "reference": f"ref-{p}", "prediction": a} for p, a in rows]
    )


def test_rows_pair_base_and_tuned_and_travel_with_each_artifact(tmp_path: Path) -> None:
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    adapter.mkdir()
    merged.mkdir()
    arts = Artifacts(dir=str(tmp_path), adapter=str(adapter), merged=str(merged))
    path = export.write_samples(
        scores(("p0", "b0"), ("p1", "b1")), scores(("p0", "t0"), ("p1", "t1")), arts, tmp_path
    )
    rows = samples.read(path)
    assert [(r.index, r.prompt, r.reference, r.base, r.tuned) for r in rows] == [
        (0, "p0", "ref-p0", "b0", "t0"),
        (1, "p1", "ref-p1", "b1", "t1"),
    ]
    for d in (adapter, merged):
        assert (d / samples.FILENAME).read_bytes() == path.read_bytes()


def test_an_old_base_cache_or_another_prompt_leaves_base_unset(tmp_path: Path) -> None:
    arts = Artifacts(dir=str(tmp_path))
    old_cache = evaluate.Scores(values={"loss": 1.0})
    rows = samples.read(export.write_samples(old_cache, scores(("p0", "t0")), arts, tmp_path))
    assert rows[0].base is None and rows[0].tuned == "t0"
    rows = samples.read(export.write_samples(scores(("other", "b")), scores(("p0", "t0")), arts, tmp_path))
    assert rows[0].base is None
    rows = samples.read(export.write_samples(None, scores(("p0", "t0")), arts, tmp_path))
    assert rows[0].base is None
