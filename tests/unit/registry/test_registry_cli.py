"""``kubetune registry`` against local layouts: output on stdout, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from kubetune.cli import registry as cli


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kubetune")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["registry", *argv])
    code: int = args.func(args)
    return code


@pytest.fixture
def src(tmp_path: Path) -> Path:
    out = tmp_path / "src"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"w" * 4096)
    (out / "adapter_config.json").write_text('{"r": 4}')
    return out


def test_push_prints_the_digest_pinned_reference_then_show_and_pull_use_it(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "layout"
    assert run("push", str(src), f"{layout}:v1", "--base-model", "hf://org/m", "--method", "lora", "-q") == 0
    pinned = capsys.readouterr().out.strip()
    assert pinned.startswith(f"{layout}@sha256:")

    assert run("show", pinned, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"]["baseModel"]["uri"] == "hf://org/m"
    assert shown["digest"] == pinned.rpartition("@")[2]

    assert run("show", f"{layout}:v1") == 0
    text = capsys.readouterr().out
    assert "base model:  hf://org/m" in text and "adapter_model.safetensors" in text

    assert run("pull", pinned, str(tmp_path / "out"), "-q") == 0
    assert (tmp_path / "out" / "adapter_model.safetensors").read_bytes() == b"w" * 4096


def test_push_reads_lineage_from_a_yaml_file_and_flags_override_it(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "lineage.yaml"
    config.write_text("baseModel: {uri: hf://org/base, revision: abc}\nmethod: dora\nseed: 1\n")
    assert run("push", str(src), f"{tmp_path}/l:v1", "--config", str(config), "--seed", "9", "-q") == 0
    capsys.readouterr()
    assert run("show", f"{tmp_path}/l:v1", "--json") == 0
    lineage = json.loads(capsys.readouterr().out)["config"]
    assert (lineage["method"], lineage["seed"], lineage["baseModel"]["revision"]) == ("dora", 9, "abc")


def test_ls_lists_tags_of_a_layout_and_repositories_of_the_local_registry(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBETUNE_REGISTRY_DIR", str(tmp_path / "reg"))
    flags = ("--base-model", "hf://a/b", "--method", "lora", "-q")
    assert run("push", str(src), f"{tmp_path}/reg/team/bot:v1", *flags) == 0
    assert run("push", str(src), f"{tmp_path}/reg/team/bot:v2", *flags) == 0
    capsys.readouterr()
    assert run("ls") == 0
    assert capsys.readouterr().out.split() == ["team/bot"]
    assert run("ls", f"{tmp_path}/reg/team/bot") == 0
    assert capsys.readouterr().out.split() == ["v1", "v2"]
    assert run("rm", f"{tmp_path}/reg/team/bot:v1") == 0
    capsys.readouterr()
    assert run("ls", f"{tmp_path}/reg/team/bot") == 0
    assert capsys.readouterr().out.split() == ["v2"]


def test_cp_copies_a_layout_artifact_under_a_new_tag(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run("push", str(src), f"{tmp_path}/a:v1", "--base-model", "hf://a/b", "--method", "lora", "-q") == 0
    )
    pinned = capsys.readouterr().out.strip()
    assert run("cp", f"{tmp_path}/a:v1", f"{tmp_path}/b:stable", "-q") == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path}/b@{pinned.rpartition('@')[2]}"


def test_user_errors_are_one_line_on_stderr_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("pull", f"{tmp_path}/missing:v1", str(tmp_path / "out")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("kubetune: ") and "not an OCI image layout" in captured.err
    assert "Traceback" not in captured.err


def test_bad_reference_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("show", "oci://host/UPPER:v1") == 1
    assert "invalid repository 'UPPER'" in capsys.readouterr().err


def test_username_without_a_password_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ls", "oci://127.0.0.1:9/x", "--username", "u") == 1
    assert "--password-stdin" in capsys.readouterr().err
