"""Each broken dataset in testdata/broken gives one line naming the file, the line and the
reason; the run stops at the preflight (exit 1, nothing trained) without a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import result
from kubetune.trainer.__main__ import main as trainer_main

from .conftest import trainer_command

BROKEN = Path(__file__).parent / "testdata" / "broken"
CASES = {
    # file: (format, line, words in the reason)
    "bad-json.jsonl": ("instruction", 3, "invalid JSON"),
    "missing-field.jsonl": ("instruction", 2, "missing field 'output'"),
    "empty.jsonl": ("auto", 1, "file is empty"),
    "invalid-utf8.jsonl": ("instruction", 4, "not UTF-8"),
    "unknown-role.jsonl": ("chat", 2, "role 'bot' is unknown"),
    "truncated-response.jsonl": ("instruction", 2, "response truncated away"),
    "empty-response.jsonl": ("instruction", 3, "empty response"),
    "not-an-object.json": ("auto", 4, "expected a JSON object"),
    "preference-missing-side.jsonl": ("auto", 2, "missing side: field 'rejected' is missing"),
    "preference-identical-sides.jsonl": ("auto", 3, "fields 'chosen' and 'rejected' are identical"),
    "preference-truncated-side.jsonl": ("preference", 2, "the chosen answer was truncated away"),
    "preference-identical-after-cut.jsonl": ("auto", 2, "identical within the first 32 tokens"),
}


def test_every_broken_file_has_a_case() -> None:
    assert sorted(p.name for p in BROKEN.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_dataset_fails_preflight_naming_file_and_line(
    name: str, write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fmt, line, reason = CASES[name]
    spec = write_spec(
        spec={"dataset": {"uri": f"./{name}", "format": fmt}, "hyperparameters": {"maxSeqLength": 32}}
    )
    shutil.copy(BROKEN / name, spec.parent / name)
    out = tmp_path / "out"
    code = trainer_main(
        [
            "train",
            "--spec",
            str(spec),
            "--output",
            str(out),
            "--progress",
            "none",
            "--termination-log",
            str(tmp_path / "term"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1, err
    assert err[0].startswith(f"kubetune-trainer: {name}:{line}: "), err[0]
    assert reason in err[0]
    assert (tmp_path / "term").read_text().startswith(f"{name}:{line}: ")
    assert result.read(out).outcome == "PreflightFailed"
    assert not (out / "checkpoints").exists() and not (out / "adapter").exists()  # nothing trained


def test_broken_dataset_in_a_real_process_prints_no_traceback(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(spec={"dataset": {"uri": "./bad-json.jsonl"}})
    shutil.copy(BROKEN / "bad-json.jsonl", spec.parent)
    proc = subprocess.run(
        trainer_command(spec, tmp_path / "out"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "kubetune-trainer: bad-json.jsonl:3: invalid JSON: Expecting ',' delimiter (column 69)"
    ]
    assert "Traceback" not in proc.stdout + proc.stderr
    # the pod's log ends with the result, which the operator reads
    last = json.loads(proc.stdout.splitlines()[-1])
    assert (last["event"], last["phase"]) == ("phase", "result")
    assert last["result"]["outcome"] == "PreflightFailed" and last["result"]["exitCode"] == 1
    assert last["result"]["preflight"]["errors"] == [
        "bad-json.jsonl:3: invalid JSON: Expecting ',' delimiter (column 69)"
    ]


def test_all_problems_are_reported_not_only_the_first(write_spec: Any, tmp_path: Path) -> None:
    rows = [
        {"instruction": "a", "output": "b"},
        {"instruction": "c"},
        {"instruction": "d", "output": ""},
        {"output": "e"},
    ]
    spec = write_spec(rows)
    code = trainer_main(
        ["preflight", "--spec", str(spec), "--output", str(tmp_path / "out"), "--progress", "none"]
    )
    assert code == 1
    errors = result.read(tmp_path / "out").preflight.errors  # type: ignore[union-attr]
    assert [e.split(": ")[0] for e in errors] == ["train.jsonl:2", "train.jsonl:3", "train.jsonl:4"]
