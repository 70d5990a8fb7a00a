"""--quantize: bitsandbytes serves on CPU (int8); GPU-only values stop start-up with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubetune.testing.servers import Server, server_env

from .conftest import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_bitsandbytes_serves_on_cpu(quantized_server: Server) -> None:
    body = {"inputs": "reset a password", "parameters": {"max_new_tokens": 4, "details": True}}
    response = quantized_server.post("/generate", body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["details"]["generated_tokens"] >= 1
    assert (
        '"msg": "quantized"' in quantized_server.log()
        and '"quantize": "bitsandbytes"' in quantized_server.log()
    )


@pytest.mark.parametrize("value", ["gptq", "awq", "marlin", "bitsandbytes-nf4", "fp8"])
def test_gpu_only_quantize_exits_1_with_one_line(value: str, tiny_model: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubetune.serving", "--model-id", str(tiny_model), "--quantize", value],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"kubetune serve: --quantize {value} needs GPU kernels")


def test_dtype_with_quantize_exits_1(tiny_model: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubetune.serving",
            "--model-id",
            str(tiny_model),
            "--quantize",
            "bitsandbytes",
            "--dtype",
            "bfloat16",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "kubetune serve: --dtype cannot be combined with --quantize",
    )


def test_missing_model_directory_exits_1_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubetune.serving", "--model-id", str(tmp_path / "nope"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"kubetune serve: --model-id {tmp_path / 'nope'}: no such directory")
    )
