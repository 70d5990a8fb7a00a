"""Preference tuning on the tiny Llama, on CPU: a synthetic set where the preferred answer
follows a learnable rule (each animal has its own sound; the rejected answer gives another
animal's). The base model prefers the right answer about as often as chance; after DPO (LoRA),
IPO (DoRA) or ORPO (full fine-tuning) it clearly does, on held-out pairs, and the gate, the
model card and the result carry the preference metrics. A run stopped mid-way resumes with the
reference log-probabilities read back, not recomputed, and ends like an uninterrupted run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import loop, pipeline, progress
from kubetune.trainer import spec as job_spec
from kubetune.trainer.preference import reference

from .conftest import ANIMALS, SOUNDS


def preference_rows() -> list[dict[str, str]]:
    """132 pairs: every animal with its own sound (chosen) against each other sound (rejected)."""
    rows = []
    for animal, sound in zip(ANIMALS, SOUNDS, strict=True):
        for wrong in SOUNDS:
            if wrong != sound:
                rows.append(
                    {
                        "prompt": f"What does the {animal} say?",
                        "chosen": f" The {animal} {sound}.",
                        "rejected": f" The {animal} {wrong}.",
                    }
                )
    return rows


METRICS = ["loss", "perplexity", "preferenceAccuracy", "rewardMargin"]


def _spec(method: dict[str, Any], preference: dict[str, Any], lr: float, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": {"format": "auto", "validationSplit": 0.25},
        "method": method,
        "preference": preference,
        "hyperparameters": {"epochs": 2, "learningRate": lr, "batchSize": 8},
        "evaluation": {"metrics": METRICS, "gate": {"metric": "preferenceAccuracy", "minImprovement": 0.2}},
        **extra,
    }


def _metric(result: Any, name: str) -> Any:
    return next(m for m in result.metrics if m.name == name)


@pytest.mark.parametrize(
    ("method", "preference", "lr"),
    [
        (
            {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
            {"loss": "sigmoid", "beta": 0.1},
            0.01,
        ),
        ({"type": "dora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}}, {"loss": "ipo", "beta": 0.5}, 0.01),
        ({"type": "full"}, {"loss": "orpo", "beta": 0.5}, 0.002),
    ],
    ids=["dpo-lora", "ipo-dora", "orpo-full"],
)
def test_preference_accuracy_rises_from_chance(
    method: dict[str, Any], preference: dict[str, Any], lr: float, write_spec: Any, tmp_path: Path
) -> None:
    path = write_spec(preference_rows(), spec=_spec(method, preference, lr), name=method["type"])
    sink = progress.ListSink()
    result = pipeline.run(job_spec.load(path), pipeline.Options(output_dir=tmp_path / "out"), sink)
    assert result.outcome == "Succeeded", result.message
    assert result.preflight is not None and result.preflight.format == "preference"
    assert [m.name for m in result.metrics] == METRICS
    acc = _metric(result, "preferenceAccuracy")
    assert 0.2 <= acc.base <= 0.8, acc  # about chance: a random model has no idea which sound
    assert acc.tuned >= 0.9, acc
    margin = _metric(result, "rewardMargin")
    assert margin.base == 0.0 and margin.tuned > 0.0, margin
    loss = _metric(result, "loss")
    if preference["loss"] == "sigmoid":
        assert loss.base == pytest.approx(math.log(2), abs=1e-6)  # the base is its own reference
    assert loss.tuned < loss.base, loss
    assert result.gate is not None and result.gate.passed and result.gate.metric == "preferenceAccuracy"
    assert result.lineage["preference"] == preference  # recorded, and copied into the Adapter
    steps = [e for e in sink.events if isinstance(e, progress.ProgressEvent)]
    assert steps[-1].step == result.training.total_steps  # type: ignore[union-attr]
    card = json.loads((tmp_path / "out" / "model-card.json").read_text())
    assert {m["name"] for m in card["metrics"]} >= {"preferenceAccuracy", "rewardMargin"}
    assert "preferenceAccuracy" in (tmp_path / "out" / "MODEL_CARD.md").read_text()
    cache = tmp_path / "out" / "checkpoints" / reference.CACHE
    stored = json.loads(cache.read_text())
    assert len(stored["validation"]) == len(preference_rows()) // 4
    assert (stored["train"] is None) == (preference["loss"] == "orpo")  # orpo trains without a reference


class _StopAt:
    """A sink that asks the loop to stop (as SIGTERM does) once ``step`` is reported."""

    def __init__(self, step: int, stop: loop.StopFlag) -> None:
        self.step, self.stop, self.events = step, stop, progress.ListSink()

    def emit(self, event: Any) -> None:
        self.events.emit(event)
        if isinstance(event, progress.ProgressEvent) and event.step == self.step:
            self.stop.requested = True

    def close(self) -> None:
        return None


def test_resumed_run_reads_the_reference_back_and_ends_like_an_uninterrupted_one(
    write_spec: Any, tmp_path: Path
) -> None:
    spec = _spec({"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}}, {"beta": 0.1}, 0.01)
    spec["hyperparameters"] = {"maxSteps": 8, "learningRate": 0.01, "batchSize": 8}
    spec["checkpointEverySteps"] = 3
    path = write_spec(preference_rows(), spec=spec, name="resume")
    whole = progress.ListSink()
    uninterrupted = pipeline.run(job_spec.load(path), pipeline.Options(output_dir=tmp_path / "whole"), whole)
    assert uninterrupted.outcome == "Succeeded", uninterrupted.message

    out = tmp_path / "parts"
    stop = loop.StopFlag()
    first = _StopAt(4, stop)
    stopped = pipeline.run(job_spec.load(path), pipeline.Options(output_dir=out, stop=stop), first)
    assert stopped.outcome == "Terminated", stopped.message
    cache = out / "checkpoints" / reference.CACHE
    written = cache.stat().st_mtime_ns, cache.read_bytes()
    second = progress.ListSink()
    resumed = pipeline.run(job_spec.load(path), pipeline.Options(output_dir=out), second)
    assert resumed.outcome == "Succeeded", resumed.message
    assert resumed.training is not None and resumed.training.resumed_from_step == 4
    assert (cache.stat().st_mtime_ns, cache.read_bytes()) == written  # read back, not recomputed

    def losses(sink: progress.ListSink) -> dict[int, float]:
        return {e.step: e.loss for e in sink.events if isinstance(e, progress.ProgressEvent)}

    both = {**losses(first.events), **losses(second)}
    assert both.keys() == losses(whole).keys()
    for step, value in losses(whole).items():
        assert both[step] == pytest.approx(value, abs=1e-5), step
    assert [m.name for m in resumed.metrics] == [m.name for m in uninterrupted.metrics]
    assert [m.tuned for m in resumed.metrics] == pytest.approx(
        [m.tuned for m in uninterrupted.metrics], abs=1e-4
    )
