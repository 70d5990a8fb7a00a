"""Evaluation metrics, computed here rather than pulled from a package: they are short.

- ROUGE-L: F1 of the longest common subsequence of word tokens, averaged over samples.
- BLEU: corpus BLEU-4 (uniform weights, brevity penalty, floor smoothing of zero counts as
  sacreBLEU's ``floor``), on a 0..1 scale.
- exact match: share of predictions equal to the reference after lowercasing and collapsing
  whitespace.
- accuracy and macro-F1 for classification.
Also which direction is better for each metric. Pure functions of strings and labels.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from kubetune.api.v1alpha1.common import LOWER_IS_BETTER

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lowercased word tokens (punctuation dropped)."""
    return _WORD.findall(text.lower())


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one pair, 0..1."""
    p, r = words(prediction), words(reference)
    if not p and not r:
        return 1.0
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def mean_rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    pairs = list(zip(predictions, references, strict=True))
    return sum(rouge_l(p, r) for p, r in pairs) / len(pairs) if pairs else 0.0


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(predictions: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU, 0..1."""
    matches = [0] * max_n
    totals = [0] * max_n
    pred_len = ref_len = 0
    for pred, ref in zip(predictions, references, strict=True):
        p, r = words(pred), words(ref)
        pred_len += len(p)
        ref_len += len(r)
        for n in range(1, max_n + 1):
            pc, rc = _ngrams(p, n), _ngrams(r, n)
            matches[n - 1] += sum(min(c, rc[g]) for g, c in pc.items())
            totals[n - 1] += max(0, len(p) - n + 1)
    if pred_len == 0 or totals[0] == 0:
        return 0.0
    log_precision = 0.0
    for m, t in zip(matches, totals, strict=True):
        if t == 0:
            return 0.0
        log_precision += math.log((m if m > 0 else 0.1) / t) / max_n
    brevity = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / pred_len)
    return brevity * math.exp(log_precision)


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
