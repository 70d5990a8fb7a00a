"""``kubetune review export|import`` on files: the export's three files and the key's source,
the default export directory that import finds by the ratings' export id, and one-line refusals
(no samples, no base answers, ratings of another export, a missing key)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune.api.contract import samples
from kubetune.cli import main as cli
from kubetune.review import blind


def run_dir(tmp_path: Path, *, base: bool = True, n: int = 4) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    rows = [
        samples.Sample(index=i, prompt=f"p{i}", base=f"b{i}" if base else None, tuned=f"t{i}")
        for i in range(n)
    ]
    samples.write(rows, out / samples.FILENAME)
    return out


def ratings_for(key: blind.Key, path: Path, choose_tuned: bool = True) -> Path:
    body = {
        "kind": "kubetune-review-ratings",
        "exportId": key.export_id,
        "reviewer": "ada",
        "ratings": [
            {"id": e.id, "choice": e.tuned if choose_tuned else ("left" if e.tuned == "right" else "right")}
            for e in key.items
        ],
    }
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def test_export_then_import_from_the_default_directory_writes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    run = run_dir(tmp_path)
    assert cli.main(["review", "export", str(run), "--seed", "4"]) == 0
    (export,) = (tmp_path / ".kubetune" / "reviews").iterdir()
    assert sorted(p.name for p in export.iterdir()) == ["items.jsonl", "key.json", "review.html"]
    key = blind.Key.model_validate_json((export / "key.json").read_text(encoding="utf-8"))
    assert export.name == key.export_id and key.seed == 4 and key.source == {"runDir": str(run.resolve())}
    assert len((export / "items.jsonl").read_text(encoding="utf-8").splitlines()) == 4
    capsys.readouterr()
    assert cli.main(["review", "import", str(ratings_for(key, tmp_path / "r.json"))]) == 0
    out = capsys.readouterr().out
    assert (
        "win rate of tuned over base: 100.0%" in out and "4 tuned preferred, 0 base preferred, 0 ties" in out
    )
    assert json.loads((run / "human-review.json").read_text(encoding="utf-8"))["wins"] == 4


def test_no_write_prints_and_leaves_the_run_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_dir(tmp_path)
    assert cli.main(["review", "export", str(run), "--seed", "1", "--out", str(tmp_path / "x")]) == 0
    key = blind.Key.model_validate_json((tmp_path / "x" / "key.json").read_text(encoding="utf-8"))
    ratings = ratings_for(key, tmp_path / "r.json", choose_tuned=False)
    capsys.readouterr()
    assert (
        cli.main(
            ["review", "import", str(ratings), "--export", str(tmp_path / "x"), "--no-write", "-o", "json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["winRate"] == 0.0
    assert not (run / "human-review.json").exists()


def test_ratings_from_another_export_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_dir(tmp_path)
    assert cli.main(["review", "export", str(run), "--seed", "1", "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["review", "export", str(run), "--seed", "2", "--out", str(tmp_path / "b")]) == 0
    key_b = blind.Key.model_validate_json((tmp_path / "b" / "key.json").read_text(encoding="utf-8"))
    ratings = ratings_for(key_b, tmp_path / "r.json")
    capsys.readouterr()
    assert cli.main(["review", "import", str(ratings), "--export", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert f"rates review export {key_b.export_id}" in err and "--export" in err
    assert not (run / "human-review.json").exists()


def test_import_without_the_export_directory_says_to_pass_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    key = blind.build([samples.Sample(index=0, prompt="p", base="b", tuned="t")], 0, {})[1]
    assert cli.main(["review", "import", str(ratings_for(key, tmp_path / "r.json"))]) == 1
    assert "no review key at" in capsys.readouterr().err


def test_a_directory_without_samples_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["review", "export", str(tmp_path)]) == 1
    assert "has no samples.jsonl" in capsys.readouterr().err


def test_samples_without_base_answers_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["review", "export", str(run_dir(tmp_path, base=False))]) == 1
    assert "compareToBase" in capsys.readouterr().err


def test_status_of_an_adapter_shows_its_human_review() -> None:
    from kubetune.cli import status

    adapter = {
        "metadata": {"name": "bot", "namespace": "ml"},
        "spec": {"ref": "oci://r/bot@sha256:" + "a" * 64, "scorecard": {}},
        "status": {
            "state": "stable",
            "humanReview": {
                "exportId": "0123456789abcdef",
                "wins": 6,
                "losses": 3,
                "ties": 1,
                "items": 10,
                "winRate": 0.65,
                "low": 0.35,
                "high": 0.86,
                "confidence": 0.95,
                "method": "wilson",
            },
        },
    }
    text = status.render_adapter(adapter)
    assert "Human review: tuned wins 65.0% of judgments vs base" in text
    assert "95% interval 35.0%-86.0%" in text and "6/3/1 win/loss/tie" in text
    assert "Human review" not in status.render_adapter({**adapter, "status": {"state": "stable"}})
