"""The model card's pictures: a loss curve and a base-vs-tuned chart, drawn from the run's own
records, written next to the card and into each artifact directory (so they are pushed with it),
and linked from its Markdown."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from PIL import Image

from kubetune.api.contract.result import Artifacts
from kubetune.api.v1alpha1.common import MetricComparison
from kubetune.registry import artifact
from kubetune.trainer import card, charts, export

PNG = b"\x89PNG\r\n\x1a\n"
LOSSES = [(step, 2.0 * math.exp(-step / 20) + 0.5) for step in range(1, 81)]
METRICS = [
    MetricComparison(name="loss", base=2.9, tuned=1.1, delta=1.8),
    MetricComparison(name="rougeL", base=0.2, tuned=0.45, delta=0.25),
]


def _card() -> dict[str, Any]:
    return {
        "job": {"name": "support"},
        "baseModel": {"uri": "hf://org/base", "revision": "abc"},
        "dataset": {
            "uri": "train.jsonl",
            "format": "instruction",
            "sha256": "0" * 64,
            "trainRows": 8,
            "validationRows": 2,
        },
        "method": "lora",
        "seed": 42,
        "hyperparameters": {"epochs": 1},
        "versions": {"kubetune": "0.1.0"},
        "metrics": [m.model_dump(mode="json", by_alias=True) for m in METRICS],
        "gate": None,
        "training": {"steps": 80, "finalLoss": LOSSES[-1][1], "tokensPerSecond": 100.0, "device": "cpu"},
        "artifacts": {},
    }


def test_card_carries_both_pictures_next_to_it_and_in_the_adapter_directory(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    export.write_card(
        _card(), Artifacts(dir=str(tmp_path), adapter=str(adapter)), tmp_path, losses=LOSSES, metrics=METRICS
    )

    for where in (tmp_path, adapter):
        for name in (charts.LOSS_CURVE, charts.METRICS_CHART):
            data = (where / name).read_bytes()
            assert data.startswith(PNG) and 5_000 < len(data) < 100_000, (where / name, len(data))
    with Image.open(tmp_path / charts.LOSS_CURVE) as image:
        assert image.size == (640, 320)
    text = (tmp_path / "MODEL_CARD.md").read_text()
    assert f"![training loss per step]({charts.LOSS_CURVE})" in text
    assert f"![base vs tuned, per metric]({charts.METRICS_CHART})" in text
    assert (adapter / "README.md").read_text() == text  # relative links resolve in the artifact too
    assert json.loads((tmp_path / "model-card.json").read_text())["pictures"] == {
        "lossCurve": charts.LOSS_CURVE,
        "metrics": charts.METRICS_CHART,
    }


def test_without_records_there_is_no_picture_and_no_dangling_link(tmp_path: Path) -> None:
    export.write_card(_card(), Artifacts(dir=str(tmp_path)), tmp_path, losses=[], metrics=[])
    assert not (tmp_path / charts.LOSS_CURVE).exists() and not (tmp_path / charts.METRICS_CHART).exists()
    assert "![" not in (tmp_path / "MODEL_CARD.md").read_text()
    assert "pictures" not in json.loads((tmp_path / "model-card.json").read_text())


def test_non_finite_losses_are_left_out_of_the_curve(tmp_path: Path) -> None:
    assert charts.loss_curve([(1, float("nan")), (2, float("inf"))], tmp_path / "x.png") is None
    assert charts.loss_curve([(1, float("nan")), (2, 1.0)], tmp_path / "y.png") == tmp_path / "y.png"


def test_a_metric_measured_only_for_the_tuned_model_still_gets_a_bar(tmp_path: Path) -> None:
    only_tuned = [MetricComparison(name="accuracy", tuned=0.75)]
    assert charts.metrics_chart(only_tuned, tmp_path / "m.png") == tmp_path / "m.png"


def test_markdown_links_only_the_pictures_the_card_names() -> None:
    text = card.markdown({**_card(), "pictures": {"lossCurve": "loss-curve.png"}})
    assert "](loss-curve.png)" in text and "metrics.png" not in text


def test_pictures_are_pushed_as_documentation_layers() -> None:
    assert artifact.classify("loss-curve.png") == (artifact.DOC_MEDIA_TYPE, "doc")
