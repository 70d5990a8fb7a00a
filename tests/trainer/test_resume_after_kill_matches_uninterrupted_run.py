"""A training pod killed mid-way and started again ends where an uninterrupted run ends: same
step count, the same loss curve, and at most one checkpoint interval done twice (none after
SIGTERM, which checkpoints before exiting with 143)."""

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

EVERY = 25
KILL_AT = 60
SPEC = {
    "method": {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.1}},
    "hyperparameters": {
        "epochs": 40,
        "batchSize": 4,
        "learningRate": 0.005,
        "scheduler": "cosine",
        "warmupRatio": 0.05,
    },
    "checkpointEverySteps": EVERY,
}


def _train(spec: Path, out: Path, kill: signal.Signals | None) -> tuple[int, list[dict[str, Any]]]:
    """Run the trainer as a pod would; send ``kill`` once step KILL_AT is reported."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = trainer_command(spec, out, "--termination-log", str(out.parent / f"{out.name}.termination"))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events: list[dict[str, Any]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        events.append(event)
        if kill is not None and event.get("event") == "progress" and event["step"] == KILL_AT:
            proc.send_signal(kill)
    proc.wait(timeout=120)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr
    return proc.returncode, events


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, spec_file: Any
) -> tuple[result.RunResult, dict[int, float]]:
    """The same job, uninterrupted, in process."""
    return train_in_process(tmp_path_factory.mktemp("reference"), spec_file, SPEC)


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restarted_run_ends_like_uninterrupted(
    kill: signal.Signals, write_spec: Any, reference: Any, tmp_path: Path
) -> None:
    ref, ref_losses = reference
    spec = write_spec(spec=SPEC, name="resume")
    out = tmp_path / "out"

    code, first = _train(spec, out, kill)
    assert code == (143 if kill == signal.SIGTERM else -signal.SIGKILL)
    done_first = max(progress_losses(first))
    assert KILL_AT <= done_first < ref.training.total_steps
    if kill == signal.SIGTERM:
        stopped = result.read(out)
        assert stopped.outcome == "Terminated"
        assert stopped.checkpoints[-1].step == done_first  # checkpointed where it stopped
        assert "resume" in (tmp_path / "out.termination").read_text()

    code, second = _train(spec, out, None)
    assert code == 0
    final = result.read(out)
    assert final.training is not None and ref.training is not None
    assert final.training.steps == ref.training.steps == final.training.total_steps
    resumed = final.training.resumed_from_step
    assert resumed is not None
    assert done_first - resumed <= (0 if kill == signal.SIGTERM else EVERY)
    again = progress_losses(second)
    assert min(again) == resumed + 1  # the second attempt starts right after its checkpoint

    # the stitched loss curve is the uninterrupted one: same data order, RNG and optimizer state
    stitched = {**progress_losses(first), **again}
    for step, loss in ref_losses.items():
        assert stitched[step] == pytest.approx(loss, rel=1e-3, abs=1e-3), f"step {step}"
    assert final.training.final_loss == pytest.approx(ref.training.final_loss, rel=1e-3)
    assert [c.step for c in final.checkpoints][-1] == final.training.steps
