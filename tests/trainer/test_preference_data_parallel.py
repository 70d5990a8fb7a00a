"""DPO under torchrun: two data-parallel processes (gloo on CPU, as for ``numNodes: 2``) train
like one process accumulating two micro-batches per step. Rank 0 computes the reference
log-probabilities and sends them to rank 1; the step's loss is the mean over all its pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import result

from .conftest import progress_losses, train_in_process
from .test_data_parallel_matches_single_process import _torchrun
from .test_preference_tuning import preference_rows

pytestmark = pytest.mark.slow

LORA = {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}}
COMMON = {
    "dataset": {"format": "auto", "validationSplit": 0.25},
    "method": LORA,
    "preference": {"beta": 0.1},
    "evaluation": {"metrics": ["loss", "preferenceAccuracy", "rewardMargin"]},
}
HP = {"maxSteps": 6, "learningRate": 0.01, "scheduler": "constant", "warmupRatio": 0.0}
SINGLE = {**COMMON, "hyperparameters": {**HP, "batchSize": 4, "gradientAccumulationSteps": 2}}
PARALLEL = {**COMMON, "hyperparameters": {**HP, "batchSize": 4}}


def test_two_ranks_train_dpo_like_one_process_with_accumulation(
    spec_file: Any, write_spec: Any, tmp_path: Path
) -> None:
    def rows_spec(where: Path, rows: Any = None, spec: Any = None) -> Path:
        return spec_file(where, preference_rows(), spec)

    ref, ref_losses = train_in_process(tmp_path / "single", rows_spec, SINGLE)
    assert ref.outcome == "Succeeded", ref.message
    out = tmp_path / "out"
    code, events, stderr = _torchrun(write_spec(preference_rows(), spec=PARALLEL), out)
    assert code == 0, stderr[-3000:]
    done = result.read(out)
    assert done.outcome == "Succeeded", done.message
    assert sorted(progress_losses(events)) == list(range(1, 7))
    for step, loss in ref_losses.items():
        assert progress_losses(events)[step] == pytest.approx(loss, rel=1e-4, abs=1e-5), f"step {step}"
    tuned = {m.name: m.tuned for m in done.metrics}
    assert {m.name for m in ref.metrics} == set(tuned) == {"loss", "preferenceAccuracy", "rewardMargin"}
    for m in ref.metrics:
        assert tuned[m.name] == pytest.approx(m.tuned, rel=1e-3, abs=1e-5), m.name
    assert ref_losses[6] < ref_losses[1]
