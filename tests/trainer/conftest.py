"""Fixtures of the CPU training tests: one tiny random Llama per session, small datasets, specs.

Everything is offline (HF_HUB_OFFLINE=1) and on CPU. Specs are written as YAML files next to
their dataset so that relative paths are exercised the way users write them.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("torch")
pytest.importorskip("peft")

ANIMALS = ["cat", "dog", "cow", "owl", "fox", "bee", "ant", "elk", "yak", "eel", "hen", "pig"]
SOUNDS = [
    "meows",
    "barks",
    "moos",
    "hoots",
    "yips",
    "buzzes",
    "marches",
    "bugles",
    "grunts",
    "zaps",
    "clucks",
    "oinks",
]


def memorisable_rows() -> list[dict[str, str]]:
    """Twenty-four short instruction rows with fixed, learnable answers."""
    rows = []
    for animal, sound in zip(ANIMALS, SOUNDS, strict=True):
        rows.append({"instruction": f"What does the {animal} say?", "output": f"The {animal} {sound}."})
        rows.append({"instruction": "Name the animal that " + sound + ".", "output": f"It is the {animal}."})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path) -> Path:
    """A tiny random Llama whose tokenizer was trained on the memorisable rows (and chat roles)."""
    from kubetune.trainer import models, tiny

    models.quiet_transformers()
    data = write_jsonl(
        tiny_dir / "corpus.jsonl", [*memorisable_rows(), {"text": "system user assistant tool"}]
    )
    return tiny.build(tiny_dir / "model", data, hidden=64, layers=2, heads=4, seed=0)


BASE_SPEC: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "FineTuneJob",
    "metadata": {"name": "t"},
    "spec": {
        "baseModel": {"uri": "MODEL"},
        "dataset": {"uri": "./train.jsonl", "format": "instruction", "validationSplit": 0.25},
        "method": {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
        "hyperparameters": {
            "epochs": 10,
            "learningRate": 0.01,
            "batchSize": 6,
            "maxSeqLength": 64,
            "scheduler": "constant",
            "warmupRatio": 0.0,
            "seed": 3,
        },
        "resources": {"gpusPerNode": 0},
        "evaluation": {"metrics": ["loss", "perplexity"], "maxSamples": 6, "maxNewTokens": 8},
        "checkpointEverySteps": 1000,
    },
}


def _merge(
    into: dict[str, Any], extra: dict[str, Any], replace: tuple[str, ...] = ("method",)
) -> dict[str, Any]:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict) and k not in replace:
            _merge(into[k], v)
        else:
            into[k] = v
    return into


SpecWriter = Callable[..., Path]


@pytest.fixture(scope="session")
def spec_file(tiny_model: Path) -> Callable[..., Path]:
    """``spec_file(where, rows=None, spec=None)`` writes ``where/job.yaml`` and ``where/train.jsonl``.

    ``spec`` is merged into the base spec (nested dicts merge; other values, and ``method``,
    replace). ``rows`` default to :func:`memorisable_rows`.
    """

    def write(
        where: Path, rows: list[dict[str, Any]] | None = None, spec: dict[str, Any] | None = None
    ) -> Path:
        write_jsonl(where / "train.jsonl", memorisable_rows() if rows is None else rows)
        body = copy.deepcopy(BASE_SPEC)
        body["spec"]["baseModel"]["uri"] = str(tiny_model)
        _merge(body["spec"], copy.deepcopy(spec or {}))
        path = where / "job.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_spec(tmp_path: Path, spec_file: Callable[..., Path]) -> SpecWriter:
    """Like :func:`spec_file`, in ``tmp_path/name``: ``write_spec(rows=None, spec=None, name="job")``."""

    def write(
        rows: list[dict[str, Any]] | None = None, *, spec: dict[str, Any] | None = None, name: str = "job"
    ) -> Path:
        return spec_file(tmp_path / name, rows, spec)

    return write


def trainer_command(spec: Path, out: Path, *extra: str, launcher: tuple[str, ...] = ()) -> list[str]:
    """``python -m kubetune.trainer train --spec SPEC --output OUT EXTRA``, as a training pod runs
    it; ``launcher`` goes before the module, e.g. the torchrun launcher's arguments ending in -m."""
    return [
        sys.executable,
        "-m",
        *launcher,
        "kubetune.trainer",
        "train",
        "--spec",
        str(spec),
        "--output",
        str(out),
        *extra,
    ]


def progress_losses(events: list[dict[str, Any]]) -> dict[int, float]:
    """Loss by step from the trainer's JSON progress events."""
    return {e["step"]: e["loss"] for e in events if e.get("event") == "progress"}


def train_in_process(
    where: Path, spec_file: SpecWriter, spec: dict[str, Any]
) -> tuple[Any, dict[int, float]]:
    """Run a job uninterrupted in this process: its RunResult and loss by step."""
    from kubetune.trainer import pipeline, progress
    from kubetune.trainer import spec as job_spec

    sink = progress.ListSink()
    run = pipeline.run(
        job_spec.load(spec_file(where, spec=spec)), pipeline.Options(output_dir=where / "out"), sink
    )
    losses = {e.step: e.loss for e in sink.events if isinstance(e, progress.ProgressEvent)}
    return run, losses
