"""``kubetune run FILE``: the preflight table, a dry run that trains nothing, a full run that
ends with the base-vs-tuned table, the artifacts and a push to the local registry, and a
second invocation that resumes instead of retraining."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import result
from kubetune.cli import run as run_cli


def kubetune_run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kubetune")
    run_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["run", *argv])
    code: int = args.func(args)
    return code


def test_dry_run_prints_the_preflight_and_trains_nothing(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec()
    out = tmp_path / "out"
    assert kubetune_run(str(spec), "--dry-run", "--output", str(out), "--progress", "none") == 0
    stdout = capsys.readouterr().out
    assert "Preflight PASSED" in stdout and "18 train, 6 validation" in stdout and "dry run" in stdout
    assert result.read(out).outcome == "DryRunComplete"
    assert not (out / "checkpoints").exists() and not (out / "adapter").exists()


def test_spec_dry_run_field_also_stops_after_preflight(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(spec={"dryRun": True})
    assert kubetune_run(str(spec), "--output", str(tmp_path / "out"), "--progress", "none") == 0
    assert not (tmp_path / "out" / "adapter").exists()


def test_full_run_reports_metrics_pushes_and_resumes_on_rerun(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBETUNE_REGISTRY_DIR", str(tmp_path / "registry"))
    spec = write_spec(
        spec={"evaluation": {"metrics": ["loss", "rougeL", "exactMatch"]}, "output": {"tag": "v1"}}
    )
    out = tmp_path / "out"
    assert kubetune_run(str(spec), "--output", str(out), "--progress", "json") == 0
    captured = capsys.readouterr()
    assert '"event": "progress"' in captured.err
    lines = captured.out.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:4] == ["metric", "base", "tuned", "improvement"]
    )
    names = [line.split()[0] for line in lines[header + 2 : header + 5]]
    assert names == ["loss", "rougeL", "exactMatch"]
    registry_line = next(line for line in lines if line.strip().startswith("registry"))
    assert str(tmp_path / "registry" / "t") in registry_line and "@sha256:" in registry_line
    first = result.read(out)
    assert first.training is not None and first.training.resumed_from_step is None

    assert kubetune_run(str(spec), "--output", str(out), "--progress", "none", "--no-push") == 0
    again = result.read(out)
    assert again.training is not None
    assert again.training.resumed_from_step == first.training.steps == again.training.steps
    assert [m.tuned for m in again.metrics] == pytest.approx([m.tuned for m in first.metrics], abs=1e-4)


def test_changed_spec_refuses_old_checkpoints_until_fresh(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        kubetune_run(str(write_spec(name="a")), "--output", str(out), "--progress", "none", "--no-push") == 0
    )
    changed = write_spec(spec={"hyperparameters": {"learningRate": 0.02}}, name="a")
    assert kubetune_run(str(changed), "--output", str(out), "--progress", "none", "--no-push") == 1
    assert "different spec" in capsys.readouterr().err
    assert kubetune_run(str(changed), "--output", str(out), "--progress", "none", "--no-push", "--fresh") == 0


def test_invalid_spec_is_one_line_with_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text(
        "apiVersion: kubetune.io/v1alpha1\nkind: FineTuneJob\nmetadata: {name: x}\n"
        "spec: {baseModel: {uri: ./m}, dataset: {uri: ./d.jsonl}, method: {type: lora, lora: {r: 0}}}\n"
    )
    assert kubetune_run(str(bad)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "spec.method.lora.r" in err[0] and ">= 1" in err[0]


def test_unmet_gate_keeps_artifacts_exits_2_and_pushes_nothing(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubetune.trainer.__main__ import main as trainer_main

    monkeypatch.setenv("KUBETUNE_REGISTRY_DIR", str(tmp_path / "registry"))
    spec = write_spec(spec={"evaluation": {"gate": {"metric": "loss", "minImprovement": 100.0}}})
    assert kubetune_run(str(spec), "--output", str(tmp_path / "local"), "--progress", "none") == 2
    captured = capsys.readouterr()
    assert "gate not met" in captured.err and "NOT MET" in captured.out
    assert not (tmp_path / "registry").exists()
    assert (tmp_path / "local" / "adapter" / "adapter_model.safetensors").is_file()

    out = tmp_path / "pod"
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
    assert code == 2
    done = result.read(out)
    assert done.outcome == "GateNotMet" and done.gate is not None and not done.gate.passed
    assert "the gate needs at least 100.0" in (tmp_path / "term").read_text()
    assert done.artifacts is not None and Path(done.artifacts.adapter or "").is_dir()


def test_nproc_trains_with_two_processes_shows_rank_0_progress_and_pushes_once(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBETUNE_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = write_spec(spec={"hyperparameters": {"epochs": 4, "batchSize": 3}, "output": {"tag": "v1"}})
    out = tmp_path / "out"
    assert kubetune_run(str(spec), "--output", str(out), "--progress", "json", "--nproc", "2") == 0
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if '"event": "progress"' in line]
    done = result.read(out)
    assert done.outcome == "Succeeded" and done.training is not None
    assert len(progress) == done.training.steps  # one report per step, from rank 0 only
    assert '"worldSize": 2' in captured.err
    assert result.read(out / ".rank-1").outcome == "Succeeded"
    assert "metric" in captured.out and "@sha256:" in captured.out  # the summary and one push
    assert [p.name for p in (tmp_path / "registry").iterdir()] == ["t"]


def test_nproc_below_one_is_refused(write_spec: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert kubetune_run(str(write_spec()), "--nproc", "0") == 1
    assert "--nproc must be at least 1" in capsys.readouterr().err
