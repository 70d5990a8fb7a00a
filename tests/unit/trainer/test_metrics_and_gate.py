"""Metrics match hand-computed values, and the gate reads improvement in the metric's better
direction, an absolute floor or ceiling, and a missing base score as a failure."""

from __future__ import annotations

import math

import pytest

from kubetune.api.v1alpha1.common import MetricComparison
from kubetune.api.v1alpha1.finetunejob import Gate
from kubetune.trainer import evaluate, metrics


def test_rouge_l_is_the_f1_of_the_longest_common_subsequence() -> None:
    # LCS of "the cat sat on the mat" / "the cat on the mat" is 5 words
    p, r = 5 / 6, 5 / 5
    assert metrics.rouge_l("The cat sat on the mat", "the cat on the mat.") == pytest.approx(
        2 * p * r / (p + r)
    )
    assert metrics.rouge_l("", "something") == 0.0
    assert metrics.rouge_l("same words", "Same, words!") == 1.0


ROUGE_PAIRS = [
    ("police killed the gunman", "police kill the gunman"),
    ("the gunman was shot down by police", "police kill the gunman"),
    ("testing one two", "testing"),
    ("Ticket #42: refund, not replace.", "refund the ticket, do not replace it"),
    ("", "nothing predicted"),
]


def test_rouge_l_is_rouge_scores_rouge_l_f_measure() -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for prediction, reference in ROUGE_PAIRS:
        want = scorer.score(reference, prediction)["rougeL"].fmeasure
        assert metrics.rouge_l(prediction, reference) == pytest.approx(want, abs=1e-12)
    # Lin (2004)'s example: S2 "police kill the gunman" vs S3 "the gunman kill police" share LCS 2 of 4
    assert metrics.rouge_l("the gunman kill police", "police kill the gunman") == pytest.approx(0.5)
    preds, refs = [p for p, _ in ROUGE_PAIRS], [r for _, r in ROUGE_PAIRS]
    assert metrics.mean_rouge_l(preds, refs) == pytest.approx(
        sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in ROUGE_PAIRS) / len(ROUGE_PAIRS)
    )


def test_bleu_is_sacrebleus_corpus_bleu_on_its_0_to_100_scale() -> None:
    import sacrebleu

    # the value MT-Telescope's sacreBLEU test records for this pair (0.3913 on its 0..1 scale)
    assert metrics.bleu(
        ["Hi world.", "This is a Test."], ["Hello world.", "This is a test."]
    ) == pytest.approx(39.13, abs=0.005)
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    refs = ["The dog bit the man.", "It was not unexpected.", "The man bit him first."]
    assert metrics.bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-12)
    bleu = sacrebleu.metrics.BLEU()
    bleu.corpus_score(hyps, [refs])
    assert str(bleu.get_signature()).startswith(metrics.BLEU_SIGNATURE)


def test_bleu_is_100_for_identical_text_and_penalises_brevity() -> None:
    ref = "the quick brown fox jumps over the lazy dog"
    assert metrics.bleu([ref], [ref]) == pytest.approx(100.0)
    short = metrics.bleu(["the quick brown fox"], [ref])
    assert 0 < short < 100 * math.exp(1 - 9 / 4) + 1e-9
    assert metrics.bleu(["completely unrelated words here"], [ref]) < 5
    assert metrics.bleu([], []) == 0.0
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        metrics.bleu(["a", "b"], ["a"])


def test_exact_match_ignores_case_and_whitespace() -> None:
    assert metrics.exact_match(["Team:  billing.", "x"], ["team: billing.", "y"]) == 0.5


def test_macro_f1_averages_classes_equally() -> None:
    # class 0: tp=2 fp=1 fn=0 -> 0.8 ; class 1: tp=0 fp=0 fn=1 -> 0
    assert metrics.macro_f1([0, 0, 0], [0, 0, 1]) == pytest.approx(0.4)
    assert metrics.accuracy([0, 1, 1], [0, 1, 0]) == pytest.approx(2 / 3)


def test_improvement_is_positive_when_better_in_both_directions() -> None:
    assert metrics.improvement("loss", 2.0, 1.5) == 0.5
    assert metrics.improvement("rougeL", 0.2, 0.5) == pytest.approx(0.3)


def _row(name: str, base: float | None, tuned: float) -> MetricComparison:
    delta = metrics.improvement(name, base, tuned) if base is not None else None
    return MetricComparison(name=name, base=base, tuned=tuned, delta=delta)


@pytest.mark.parametrize(
    ("gate", "row", "passed"),
    [
        (Gate(metric="loss", min_improvement=0.1), _row("loss", 2.0, 1.8), True),
        (Gate(metric="loss", min_improvement=0.5), _row("loss", 2.0, 1.8), False),
        (Gate(metric="rougeL", min_improvement=0.05), _row("rougeL", 0.30, 0.33), False),
        (Gate(metric="rougeL"), _row("rougeL", 0.30, 0.29), False),
        (Gate(metric="rougeL"), _row("rougeL", 0.30, 0.30), True),
        (Gate(metric="accuracy", min_value=0.9), _row("accuracy", 0.2, 0.85), False),
        (Gate(metric="perplexity", min_value=5.0), _row("perplexity", 50.0, 4.0), True),
        (Gate(metric="perplexity", min_value=5.0), _row("perplexity", 50.0, 6.0), False),
        (Gate(metric="loss", min_improvement=0.1), _row("loss", None, 1.0), False),
    ],
)
def test_gate_verdicts(gate: Gate, row: MetricComparison, passed: bool) -> None:
    verdict = evaluate.gate(gate, [row])
    assert verdict.passed is passed, verdict.message


def test_unmeasured_gate_metric_fails_and_no_gate_passes() -> None:
    assert not evaluate.gate(Gate(metric="bleu"), [_row("loss", 2.0, 1.0)]).passed
    assert evaluate.gate(None, []).passed
