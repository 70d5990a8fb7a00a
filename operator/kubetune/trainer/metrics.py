"""Evaluation metrics; BLEU and ROUGE-L through their reference implementations.

- ROUGE-L: Google's ``rouge-score`` (the package behind Hugging Face ``evaluate``'s rouge):
  sentence-level ``rougeL`` F-measure, its default tokenizer (lowercase, ASCII letters and digits,
  as the original ROUGE-1.5.5), no stemming, averaged over samples; 0..1. Text with no ASCII
  letter or digit (e.g. Chinese, Russian) has no tokens there and scores 0: judge such data by
  loss, exact match or BLEU.
- BLEU: sacreBLEU's corpus BLEU with its defaults (signature
  ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp``), on sacreBLEU's 0..100 scale, the scale
  published BLEU scores are quoted on.
- exact match: share of predictions equal to the reference after lowercasing and collapsing
  whitespace.
- accuracy and macro-F1 for classification.
Also which direction is better for each metric. Pure functions of strings and labels; the two
packages are imported on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from kubetune.api.v1alpha1.common import LOWER_IS_BETTER

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lowercased word tokens (punctuation dropped)."""
    return _WORD.findall(text.lower())


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


@functools.cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of one pair, 0..1, as ``rouge-score`` computes it."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


def mean_rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    pairs = list(zip(predictions, references, strict=True))
    return sum(rouge_l(p, r) for p, r in pairs) / len(pairs) if pairs else 0.0


BLEU_SIGNATURE = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp"


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU, 0..100, sacreBLEU's defaults (:data:`BLEU_SIGNATURE`), one reference each."""
    from sacrebleu.metrics.bleu import BLEU

    preds, refs = list(predictions), list(references)
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} references")
    if not preds:
        return 0.0
    return float(BLEU().corpus_score(preds, [refs]).score)


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    pairs = list(zip(predictions, references, strict=True))
    return sum(normalize(p) == normalize(r) for p, r in pairs) / len(pairs) if pairs else 0.0


def accuracy(predicted: Sequence[int], gold: Sequence[int]) -> float:
    pairs = list(zip(predicted, gold, strict=True))
    return sum(p == g for p, g in pairs) / len(pairs) if pairs else 0.0


def macro_f1(predicted: Sequence[int], gold: Sequence[int]) -> float:
    """Unweighted mean of per-class F1 over the classes in the gold labels or predictions."""
    classes = sorted(set(predicted) | set(gold))
    if not classes:
        return 0.0
    scores = []
    for c in classes:
        tp = sum(1 for p, g in zip(predicted, gold, strict=True) if p == c and g == c)
        fp = sum(1 for p, g in zip(predicted, gold, strict=True) if p == c and g != c)
        fn = sum(1 for p, g in zip(predicted, gold, strict=True) if p != c and g == c)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def improvement(metric: str, base: float, tuned: float) -> float:
    """How much better tuned is than base, positive when better, in the metric's units."""
    return tuned - base if higher_is_better(metric) else base - tuned
