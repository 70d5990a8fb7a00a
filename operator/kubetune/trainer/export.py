"""Writing the results of a run: adapter, merged model, int8 export and model card.

Layout of the output directory::

    adapter/      peft adapter: adapter_model.safetensors + adapter_config.json (+ card)
    model/        the whole model instead, for full fine-tuning (+ tokenizer, card)
    merged/       base with the adapter merged in, when spec.output.merge (+ tokenizer)
    int8/         int8 weight-only export, when spec.output.quantize is int8
    model-card.json, MODEL_CARD.md, loss-curve.png, metrics.png (the card's pictures, also
                  copied into each directory above next to its README.md)
    samples.jsonl the held-out generations, base and tuned side by side (also copied into each
                  directory above, so a pushed adapter carries them for ``kubetune review``)

Merging changes the model in place, so export runs after evaluation. Plain files only; pushing
to a registry is the caller's business.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from kubetune.api.contract import samples as samples_file
from kubetune.api.contract.result import Artifacts
from kubetune.api.v1alpha1.common import MetricComparison
from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer import card, charts, quantize


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def weights(
    model: Any, tokenizer: Any, method: ModuleType, spec: FineTuneJobSpec, out: Path, labels: list[str]
) -> tuple[Artifacts, Any]:
    """Write adapter/model, merged and int8 directories; returns them and the merged model (or None)."""
    arts = Artifacts(dir=str(out))
    if method.ADAPTER:
        adapter = _fresh(out / "adapter")
        model.save_pretrained(str(adapter), safe_serialization=True)
        if labels:
            (adapter / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
        arts.adapter = str(adapter)
    else:
        whole = _fresh(out / "model")
        model.save_pretrained(str(whole), safe_serialization=True)
        tokenizer.save_pretrained(str(whole))
        arts.model = str(whole)
        arts.registry_kind = "merged"
    merged_model: Any = None
    if spec.output.merge or spec.output.quantize == "int8":
        merged_model = model.merge_and_unload() if method.ADAPTER else model
        if spec.output.merge and method.ADAPTER:
            merged = _fresh(out / "merged")
            merged_model.save_pretrained(str(merged), safe_serialization=True)
            tokenizer.save_pretrained(str(merged))
            arts.merged = str(merged)
        elif spec.output.merge:
            arts.merged = arts.model  # a full fine-tune is already a whole model
    if spec.output.quantize == "int8":
        arts.int8 = str(quantize.export(merged_model, tokenizer, _fresh(out / "int8")))
    return arts, merged_model


def write_card(
    data: dict[str, Any],
    arts: Artifacts,
    out: Path,
    *,
    losses: Sequence[tuple[int, float]] = (),
    metrics: Sequence[MetricComparison] = (),
) -> Artifacts:
    """Write the card, with its pictures (loss curve, base-vs-tuned chart) when there is data for
    them, next to the artifacts and into each artifact directory, so they are pushed with it."""
    drawn = {
        key: picture.name
        for key, picture in (
            ("lossCurve", charts.loss_curve(losses, out / charts.LOSS_CURVE)),
            ("metrics", charts.metrics_chart(metrics, out / charts.METRICS_CHART)),
        )
        if picture is not None
    }
    if drawn:
        data = {**data, "pictures": drawn}
    text = card.markdown(data)
    body = json.dumps(data, indent=2, default=str)
    (out / "model-card.json").write_text(body, encoding="utf-8")
    (out / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    for d in (arts.adapter, arts.model, arts.merged, arts.int8):
        if d:
            (Path(d) / "model-card.json").write_text(body, encoding="utf-8")
            (Path(d) / "README.md").write_text(text, encoding="utf-8")
            for name in drawn.values():
                shutil.copyfile(out / name, Path(d) / name)
    arts.model_card = str(out / "model-card.json")
    arts.model_card_markdown = str(out / "MODEL_CARD.md")
    return arts


def write_samples(base: Any, tuned: Any, arts: Artifacts, out: Path) -> Path:
    """Write ``samples.jsonl`` from the base and tuned :class:`~kubetune.trainer.evaluate.Scores`
    (rows matched by position: both decoded the same held-out prompts), next to the artifacts and
    into each artifact directory. A base cache from before this file existed has no generations:
    the rows then carry no base answer."""
    before = list(base.generations) if base is not None else []
    rows = [
        samples_file.Sample(
            index=i,
            prompt=t["prompt"],
            reference=t["reference"],
            base=before[i]["prediction"] if i < len(before) and before[i]["prompt"] == t["prompt"] else None,
            tuned=t["prediction"],
        )
        for i, t in enumerate(tuned.generations)
    ]
    path = samples_file.write(rows, out / samples_file.FILENAME)
    for d in (arts.adapter, arts.model, arts.merged, arts.int8):
        if d:
            shutil.copyfile(path, Path(d) / samples_file.FILENAME)
    return path
