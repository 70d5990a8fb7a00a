"""Two data-parallel processes under torchrun (gloo on CPU, as the operator starts them for
``numNodes: 2``) train exactly like one process accumulating two micro-batches per step: same
steps, same loss curve, same held-out scores. Rank 0 alone reports and writes; a SIGTERM stops
both ranks at the same step after one checkpoint, and the rerun resumes from it; the
trainer's exit codes survive torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import result

from .conftest import progress_losses, train_in_process, trainer_command

pytestmark = pytest.mark.slow

STOP_AT = 12
HP = {"epochs": 6, "learningRate": 0.01, "scheduler": "cosine", "warmupRatio": 0.1}
# dropout 0: each rank draws its own dropout masks, one process would draw them in sequence
LORA = {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}}
SINGLE = {"method": LORA, "hyperparameters": {**HP, "batchSize": 3, "gradientAccumulationSteps": 2}}
PARALLEL = {"method": LORA, "hyperparameters": {**HP, "batchSize": 3}, "checkpointEverySteps": 5}


def _torchrun(spec: Path, out: Path, *, stop_at: int | None = None) -> tuple[int, list[dict[str, Any]], str]:
    """``torchrun --nproc-per-node 2`` through the trainer's launcher, as in a training pod."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launcher = ("kubetune.trainer.distributed", "--standalone", "--nproc-per-node=2", "-m")
    cmd = trainer_command(spec, out, launcher=launcher)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events: list[dict[str, Any]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        events.append(event)
        if stop_at is not None and event.get("event") == "progress" and event["step"] == stop_at:
            proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)
    assert proc.stderr is not None
    return proc.returncode, events, proc.stderr.read()


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, spec_file: Any
) -> tuple[result.RunResult, dict[int, float]]:
    """One process, accumulating two micro-batches of 3 per step, in process."""
    run, losses = train_in_process(tmp_path_factory.mktemp("single"), spec_file, SINGLE)
    assert run.outcome == "Succeeded", run.message
    return run, losses


def test_two_ranks_train_like_one_process_with_accumulation(
    reference: Any, write_spec: Any, tmp_path: Path
) -> None:
    ref, ref_losses = reference
    out = tmp_path / "out"
    code, events, stderr = _torchrun(write_spec(spec=PARALLEL), out)
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr

    done = result.read(out)
    assert done.outcome == "Succeeded" and done.training is not None and ref.training is not None
    assert done.training.steps == ref.training.steps == done.training.total_steps
    # every progress event comes from rank 0, once per step
    assert sorted(progress_losses(events)) == list(range(1, ref.training.steps + 1))
    for step, loss in ref_losses.items():
        assert progress_losses(events)[step] == pytest.approx(loss, rel=1e-3, abs=1e-4), f"step {step}"
    tuned = {m.name: m.tuned for m in done.metrics}
    for m in ref.metrics:
        assert tuned[m.name] == pytest.approx(m.tuned, rel=1e-3), m.name
    assert done.artifacts is not None and done.artifacts.primary is not None
    assert (Path(done.artifacts.primary) / "adapter_model.safetensors").is_file()

    # rank 1 trained the same steps, wrote only its own result, and no checkpoints or artifacts
    worker = result.read(out / ".rank-1")
    assert worker.outcome == "Succeeded" and f"trained {ref.training.steps} steps" in worker.message
    assert sorted(p.name for p in (out / ".rank-1").iterdir()) == ["preflight.json", "result.json"]


def test_sigterm_stops_both_ranks_at_one_checkpoint_and_the_rerun_resumes(
    reference: Any, write_spec: Any, tmp_path: Path
) -> None:
    ref, ref_losses = reference
    spec, out = write_spec(spec=PARALLEL), tmp_path / "out"

    code, first, stderr = _torchrun(spec, out, stop_at=STOP_AT)
    assert code == 143, stderr[-3000:]  # the trainer's "checkpointed, run again", not torchrun's 1
    stopped = result.read(out)
    assert stopped.outcome == "Terminated"
    done_first = max(progress_losses(first))
    assert stopped.checkpoints[-1].step == done_first >= STOP_AT

    code, second, stderr = _torchrun(spec, out)
    assert code == 0, stderr[-3000:]
    final = result.read(out)
    assert final.training is not None and ref.training is not None
    assert final.training.resumed_from_step == done_first
    assert min(progress_losses(second)) == done_first + 1
    stitched = {**progress_losses(first), **progress_losses(second)}
    for step, loss in ref_losses.items():
        assert stitched[step] == pytest.approx(loss, rel=1e-3, abs=1e-4), f"step {step}"
    assert final.training.steps == ref.training.steps


def test_an_unmet_gate_keeps_exit_code_2_through_torchrun(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(
        spec={
            "method": LORA,
            "hyperparameters": {**HP, "batchSize": 3, "maxSteps": 2},
            "evaluation": {"metrics": ["loss"], "gate": {"metric": "loss", "minImprovement": 0.99}},
        }
    )
    code, _, stderr = _torchrun(spec, tmp_path / "out")
    assert code == 2, stderr[-3000:]
    assert result.read(tmp_path / "out").outcome == "GateNotMet"
