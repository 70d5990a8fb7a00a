"""On a machine without CUDA, qlora and the GPU-only quantized exports fail at the preflight
with a message saying why and what to use instead; nothing is trained. On a GPU machine with
bitsandbytes, qlora trains (marked ``gpu``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import pipeline, progress
from kubetune.trainer import spec as job_spec

torch = pytest.importorskip("torch")
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


@cpu_only
def test_qlora_on_cpu_fails_at_preflight(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(spec={"method": {"type": "qlora"}, "resources": {"gpusPerNode": 1}})
    result = pipeline.run(job_spec.load(spec), pipeline.Options(output_dir=tmp_path), progress.NullSink())
    assert result.outcome == "PreflightFailed" and result.exit_code == 1
    assert "qlora" in result.message and "CUDA GPU" in result.message and "use method lora" in result.message
    assert not (tmp_path / "checkpoints").exists()


@cpu_only
@pytest.mark.parametrize("scheme", ["gptq", "awq", "nf4"])
def test_gpu_only_quantization_on_cpu_fails_at_preflight(
    scheme: str, write_spec: Any, tmp_path: Path
) -> None:
    spec = write_spec(spec={"output": {"quantize": scheme}})
    result = pipeline.run(job_spec.load(spec), pipeline.Options(output_dir=tmp_path), progress.NullSink())
    assert result.outcome == "PreflightFailed"
    assert f"spec.output.quantize {scheme} needs a CUDA GPU" in result.message
    assert "int8" in result.message


def test_cluster_preflight_trusts_spec_resources_for_qlora(write_spec: Any, tmp_path: Path) -> None:
    # The preflight pod has no GPU but the training pod will: only bitsandbytes may be missing.
    spec = write_spec(spec={"method": {"type": "qlora"}, "resources": {"gpusPerNode": 1}})
    opts = pipeline.Options(output_dir=tmp_path, hardware="spec", cuda=False)
    _result, outcome = pipeline.run_preflight(job_spec.load(spec), opts, progress.NullSink())
    assert not any("CUDA GPU" in e for e in outcome.report.errors), outcome.report.errors


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_qlora_trains_on_a_gpu(write_spec: Any, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    spec = write_spec(spec={"method": {"type": "qlora"}, "resources": {"gpusPerNode": 1}})
    result = pipeline.run(job_spec.load(spec), pipeline.Options(output_dir=tmp_path), progress.NullSink())
    assert result.outcome == "Succeeded", result.message
    loss = next(m for m in result.metrics if m.name == "loss")
    assert loss.base is not None and loss.tuned < loss.base
