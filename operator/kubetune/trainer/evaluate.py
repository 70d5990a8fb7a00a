"""Scoring a model on the held-out split, comparing tuned with base, and the gate.

Loss and perplexity over the trainable tokens of the validation rows (the same label mask as
training); ROUGE-L, BLEU and exact match from greedy decoding of up to ``maxSamples`` rows
(generation formats); accuracy and macro-F1 for classification. :func:`compare` builds the
API's ``MetricComparison`` rows (delta positive = better) and :func:`gate` applies
``spec.evaluation.gate``. Does not train, export or write files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from kubetune.api.v1alpha1.common import (
    CLASSIFICATION_METRICS,
    GENERATION_METRICS,
    PREFERENCE_METRICS,
    MetricComparison,
)
from kubetune.api.v1alpha1.finetunejob import EvaluationSpec, Gate
from kubetune.api.v1alpha1.preference import PreferenceSpec
from kubetune.trainer import batching, encoding, metrics, models
from kubetune.trainer.dataset import Prepared
from kubetune.trainer.preference import reference as preference_reference
from kubetune.trainer.preference import scoring as preference_scoring

EVAL_BATCH = 16


@dataclasses.dataclass
class Scores:
    """Metric values of one model, plus a few generations to show."""

    values: dict[str, float]
    samples: list[dict[str, str]] = dataclasses.field(default_factory=list)
    # every decoded held-out row (prompt, reference, prediction), for samples.jsonl and review
    generations: list[dict[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class GateVerdict:
    passed: bool
    message: str


def evaluate(
    model: Any,
    data: Prepared,
    tokenizer: Any,
    spec: EvaluationSpec,
    device: str,
    preference: PreferenceSpec | None = None,
) -> Scores:
    """The metrics of ``spec.metrics`` that apply to the data's format (preference data: loss
    and the preference metrics always, perplexity when asked)."""
    wanted = set(spec.metrics)
    values: dict[str, float] = {}
    samples: list[dict[str, str]] = []
    generations: list[dict[str, str]] = []
    if not data.validation:
        return Scores(values)
    if data.format == "preference":
        pairs = preference_reference.pairs_of(data.validation)
        got = preference_scoring.values(
            model, pairs, preference or PreferenceSpec(), int(tokenizer.pad_token_id), device
        )
        keep = wanted | {"loss", *PREFERENCE_METRICS}
        return Scores({k: v for k, v in got.items() if k in keep})
    if wanted & {"loss", "perplexity"} or data.format == "classification":
        loss, predicted = mean_loss(model, data.validation, tokenizer.pad_token_id, device)
        values["loss"] = loss
        values["perplexity"] = math.exp(min(loss, 80.0))
        if data.format == "classification":
            gold = [e.label for e in data.validation if e.label is not None]
            values["accuracy"] = metrics.accuracy(predicted, gold)
            values["f1"] = metrics.macro_f1(predicted, gold)
    if wanted & GENERATION_METRICS and data.format != "classification" and data.validation_rendered:
        rendered = data.validation_rendered[: spec.max_samples]
        predictions = generate(model, tokenizer, rendered, spec.max_new_tokens, device)
        references = [r.reference for r in rendered]
        values["rougeL"] = metrics.mean_rouge_l(predictions, references)
        values["bleu"] = metrics.bleu(predictions, references)
        values["exactMatch"] = metrics.exact_match(predictions, references)
        samples = [
            {"prompt": r.prompt[-300:], "reference": r.reference, "prediction": p}
            for r, p in zip(rendered[:5], predictions[:5], strict=False)
        ]
        generations = [
            {"prompt": r.prompt, "reference": r.reference, "prediction": p}
            for r, p in zip(rendered, predictions, strict=True)
        ]
    keep = wanted | ({"loss"} if "loss" in values else set())
    return Scores({k: v for k, v in values.items() if k in keep}, samples, generations)


def mean_loss(
    model: Any, rows: Sequence[encoding.Encoded], pad_id: int, device: str
) -> tuple[float, list[int]]:
    """Token-mean loss (example-mean for classifiers) and, for classifiers, the predictions."""

    how = batching.Batching(batch_size=EVAL_BATCH, seed=0, max_len=10**9)
    plan = batching.plan_epoch([e.length for e in rows], how, 0)
    total = 0.0
    count = 0
    predicted: dict[int, int] = {}
    with models.evaluating(model):
        for batch_rows in plan:
            batch = batching.collate(batch_rows, rows, pad_id, packed=False)
            batch = {k: v.to(device) for k, v in batch.items()}
            out = model(**batch)
            _, trainable = batching.tokens_of(batch_rows, rows)
            total += float(out.loss.float()) * trainable
            count += trainable
            if rows[batch_rows[0][0]].label is not None:
                for row, guess in zip(batch_rows, out.logits.argmax(-1).tolist(), strict=True):
                    predicted[row[0]] = int(guess)
    ordered = [predicted[i] for i in range(len(rows))] if predicted else []
    return (total / count if count else float("nan")), ordered


def generate(
    model: Any, tokenizer: Any, rendered: Sequence[Any], max_new_tokens: int, device: str
) -> list[str]:
    """Greedy continuations of each prompt, decoded without special tokens."""
    import torch

    prompts = [encoding.encode_prompt(tokenizer, r) for r in rendered]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: dict[int, str] = {}
    pad = tokenizer.pad_token_id
    with models.evaluating(model):
        for k in range(0, len(order), EVAL_BATCH):
            idx = order[k : k + EVAL_BATCH]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in idx], device=device)
            mask = torch.tensor(
                [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx], device=device
            )
            gen = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
            for j, i in enumerate(idx):
                new = gen[j, width:].tolist()
                out[i] = tokenizer.decode(new, skip_special_tokens=True).strip()
    return [out[i] for i in range(len(prompts))]


def compare(base: Scores | None, tuned: Scores, wanted: Sequence[str]) -> list[MetricComparison]:
    """One row per measured metric, in the order asked for (loss first when not asked)."""
    names = [m for m in wanted if m in tuned.values]
    if "loss" in tuned.values and "loss" not in names:
        names.insert(0, "loss")
    names += [m for m in PREFERENCE_METRICS if m in tuned.values and m not in names]
    rows = []
    for name in names:
        t = tuned.values[name]
        b = base.values.get(name) if base else None
        delta = metrics.improvement(name, b, t) if b is not None else None
        rows.append(MetricComparison(name=name, base=_clean(b), tuned=_clean(t) or 0.0, delta=_clean(delta)))
    return rows


def _clean(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, 6)


def gate(rule: Gate | None, rows: Sequence[MetricComparison]) -> GateVerdict:
    """Whether the tuned model may be registered."""
    if rule is None:
        return GateVerdict(True, "no gate set")
    row = next((r for r in rows if r.name == rule.metric), None)
    if row is None:
        return GateVerdict(
            False, f"gate metric {rule.metric} was not measured (is there a validation split?)"
        )
    better = "higher" if metrics.higher_is_better(rule.metric) else "lower"
    if rule.min_improvement:
        if row.delta is None:
            return GateVerdict(False, f"gate needs the base model's {rule.metric}, which was not measured")
        if row.delta < rule.min_improvement:
            return GateVerdict(
                False,
                f"{rule.metric} improved by {row.delta:.4f} ({row.base:.4f} -> {row.tuned:.4f}); "
                f"the gate needs at least {rule.min_improvement} ({better} is better)",
            )
    elif row.delta is not None and row.delta < 0:
        return GateVerdict(
            False,
            f"{rule.metric} got worse than base ({row.base:.4f} -> {row.tuned:.4f}); the gate needs no worse",
        )
    if rule.min_value is not None:
        ok = row.tuned >= rule.min_value if better == "higher" else row.tuned <= rule.min_value
        if not ok:
            bound = "at least" if better == "higher" else "at most"
            return GateVerdict(
                False, f"{rule.metric} is {row.tuned:.4f}; the gate needs {bound} {rule.min_value}"
            )
    detail = f" by {row.delta:.4f}" if row.delta is not None else ""
    return GateVerdict(True, f"{rule.metric} {row.tuned:.4f} passed the gate{detail}")


def applicable(metric: str, fmt: str) -> bool:
    if metric in GENERATION_METRICS:
        return fmt in ("instruction", "chat", "completion")
    if metric in CLASSIFICATION_METRICS:
        return fmt == "classification"
    if metric in PREFERENCE_METRICS:
        return fmt == "preference"
    return True
