"""``kubetune validate``: one line per problem, exit 1, never a traceback; examples pass."""

import subprocess
import sys
from pathlib import Path

import pytest

from kubetune.cli.main import main

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "docs" / "examples"
BROKEN = REPO / "tests" / "unit" / "testdata" / "broken"


def test_every_example_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(EXAMPLES.rglob("*.yaml"))
    assert len(files) >= 6
    assert main(["validate", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    # docs/examples/kueue also holds Kueue's own objects, which kubetune validate leaves alone
    ours = [f for f in files if "apiVersion: kubetune.io/" in f.read_text()]
    assert out.count(": valid") == len(ours)


def test_examples_cover_the_documented_cases() -> None:
    text = "\n".join(p.read_text() for p in EXAMPLES.rglob("*.yaml"))
    for needle in (
        "type: dora",
        "numNodes: 4",
        "format: classification",
        "format: preference",
        "kind: ModelDeployment",
        "hf://",
        "gate:",
        "engine: vllm",
    ):
        assert needle in text


def test_broken_directory_exits_1_with_one_line_per_file() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubetune.cli.main", "validate", "-q", str(BROKEN)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(list(BROKEN.glob("*.yaml")))
    for line in lines:
        path, lineno, rest = line.split(":", 2)
        assert Path(path).exists() and int(lineno) > 0 and "/broken: " in rest
    assert "Traceback" not in result.stderr


def test_invalid_yaml_and_non_utf8_are_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: kubetune.io/v1alpha1\nkind: [unclosed\n")
    (tmp_path / "b.yaml").write_bytes(b"kind: FineTuneJob\nname: caf\xe9\n")
    assert main(["validate", "-q", str(tmp_path)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith(f"{tmp_path / 'a.yaml'}:") and "invalid YAML" in out[0]
    assert out[1] == f"{tmp_path / 'b.yaml'}:2: not UTF-8 (byte 27); save the file as UTF-8"


def test_multi_document_file_reports_the_right_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "multi.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n"
        "apiVersion: kubetune.io/v1alpha1\nkind: FineTuneJob\nmetadata: {name: ok}\n"
        "spec: {baseModel: {uri: 'hf://a/b'}, dataset: {uri: d.jsonl}}\n---\n"
        "apiVersion: kubetune.io/v1alpha1\nkind: FineTuneJob\nmetadata: {name: bad}\n"
        "spec:\n  baseModel: {uri: 'hf://a/b'}\n  dataset: {uri: d.jsonl}\n  suspend: maybe\n"
    )
    assert main(["validate", str(tmp_path / "multi.yaml")]) == 1
    out = capsys.readouterr().out
    assert "FineTuneJob/ok: valid" in out
    assert (
        f"{tmp_path / 'multi.yaml'}:16: FineTuneJob/bad: spec.suspend: must be true or false (got 'maybe')"
        in out
    )


def test_missing_file_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/job.yaml"]) == 1
    assert "/nonexistent/job.yaml: cannot read" in capsys.readouterr().out
