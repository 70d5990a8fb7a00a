"""Cluster mode: with ``KUBETUNE_REGISTRY`` set (as the operator sets it in the training pod),
``python -m kubetune.trainer train`` pushes the adapter after a passing gate and reports the
digest-pinned reference in result.json and the final result event; a failed push is exit 1
with one line; an unmet gate pushes nothing; local mode (``kubetune run``) pushes only once."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubetune import registry
from kubetune.api.contract import result

from .conftest import trainer_command

SMALL = {"hyperparameters": {"epochs": 1}}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _train(spec: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        trainer_command(spec, out, *extra),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_pushes_to_kubetune_registry_and_records_the_pinned_ref(
    write_spec: Any, tmp_path: Path
) -> None:
    layout = tmp_path / "registry" / "team" / "bot"
    spec = write_spec(spec={**SMALL, "output": {"tag": "v1"}})
    out = tmp_path / "out"
    done = _train(spec, out, {"KUBETUNE_REGISTRY": str(layout)}, "--progress", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    res = result.read(out)
    assert res.outcome == "Succeeded" and res.pushed is not None, res
    assert res.pushed.tag == "v1"
    assert res.pushed.ref.startswith(f"{layout}@sha256:") and DIGEST.search(res.pushed.ref), res.pushed.ref
    wire = json.loads((out / "result.json").read_text())
    assert wire["pushed"] == {"ref": res.pushed.ref, "tag": "v1"}
    # the last event on stdout is the result, which the operator reads from the pod's log
    last = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    assert last["phase"] == "result" and last["result"]["pushed"]["ref"] == res.pushed.ref
    assert last["result"]["lineage"]["dataset"]["sha256"]
    pulled = tmp_path / "pulled"
    assert registry.pull(res.pushed.ref, pulled) == res.pushed.ref
    assert (pulled / "adapter_config.json").is_file()
    assert (pulled / "adapter_model.safetensors").is_file()
    # the tag resolves to the same artifact
    assert res.pushed.ref.endswith(registry.resolve(f"{layout}:v1"))


def test_default_tag_is_job_name_and_generation(write_spec: Any, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    out = tmp_path / "out"
    done = _train(write_spec(spec=SMALL), out, {"KUBETUNE_REGISTRY": str(layout)}, "--progress", "none")
    assert done.returncode == 0, done.stderr[-3000:]
    pushed = result.read(out).pushed
    assert pushed is not None and pushed.tag == "t-1"


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("kubetune-trainer:")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def test_an_unreachable_registry_fails_before_training_with_one_line(write_spec: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {"KUBETUNE_REGISTRY": "oci://127.0.0.1:9/team/bot", "KUBETUNE_REGISTRY_INSECURE": "1"}
    term = tmp_path / "term"
    done = _train(write_spec(spec=SMALL), out, env, "--progress", "none", "--termination-log", str(term))
    assert done.returncode == 1, done.stderr[-3000:]
    line = _one_line(done)
    assert "cannot reach oci://127.0.0.1:9/team/bot to push the result" in line, line
    res = result.read(out)
    assert res.outcome == "PreflightFailed" and res.exit_code == 1 and res.pushed is None
    assert res.artifacts is None  # nothing was trained
    assert "\n" not in term.read_text().strip()


def test_a_refused_push_after_training_is_exit_1_with_one_line(write_spec: Any, tmp_path: Path) -> None:
    from kubetune.registry import devserver

    if devserver.find_binary() is None:
        pytest.skip("needs the docker-registry binary (apt-get install docker-registry)")
    out = tmp_path / "out"
    # a real registry in maintenance mode: it answers (so the preflight passes), refuses pushes
    with devserver.DevRegistry(tmp_path / "reg", readonly=True) as server:
        target = f"oci://{server.host}/team/bot"
        env = {"KUBETUNE_REGISTRY": target, "KUBETUNE_REGISTRY_INSECURE": "1"}
        term = tmp_path / "term"
        done = _train(write_spec(spec=SMALL), out, env, "--progress", "none", "--termination-log", str(term))
    assert done.returncode == 1, done.stderr[-3000:]
    line = _one_line(done)
    assert f"push to {target} failed" in line, line
    res = result.read(out)
    assert res.outcome == "Failed" and res.exit_code == 1 and res.pushed is None
    assert "\n" not in term.read_text().strip()
    assert res.artifacts is not None and Path(res.artifacts.adapter or "").is_dir()


def test_unmet_gate_and_local_mode_do_not_push_from_the_pipeline(
    write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubetune.trainer.__main__ import main as trainer_main

    from .test_local_run_cli import kubetune_run

    layout = tmp_path / "cluster-layout"
    monkeypatch.setenv("KUBETUNE_REGISTRY", str(layout))
    gated = write_spec(spec={**SMALL, "evaluation": {"gate": {"metric": "loss", "minImprovement": 100.0}}})
    assert (
        trainer_main(["train", "--spec", str(gated), "--output", str(tmp_path / "g"), "--progress", "none"])
        == 2
    )
    assert result.read(tmp_path / "g").pushed is None and not layout.exists()

    # kubetune run pushes once, to spec.output.repository, ignoring KUBETUNE_REGISTRY
    local = tmp_path / "local-layout"
    spec = write_spec(spec={**SMALL, "output": {"repository": str(local)}}, name="local")
    assert kubetune_run(str(spec), "--output", str(tmp_path / "l"), "--progress", "none") == 0
    assert result.read(tmp_path / "l").pushed is None
    assert not layout.exists()
    assert registry.list_tags(str(local)) == ["t-1"]
