"""The statistical judge tells noise from regression, on seeded synthetic windows.

Statistical properties measured over many seeded draws (fixed seeds, so every run sees the same
draws): how often a healthy canary fails an analysis, how often real regressions are caught,
compared with the threshold judge on the very same draws. The numbers are recorded in
docs/modeldeployment.md and benchmarks/canary/RESULTS.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec
from kubetune.controllers.modeldeployment import analysis, statistical, stats
from kubetune.controllers.modeldeployment.analysis import Observation

from . import synthetic_canary as syn

TIGHT = {"maxP95LatencyRatio": 1.2, "maxTimePerTokenRatio": 1.2, "maxQueueTimeRatio": 1.2}


def spec(judge: str = "statistical", **kw: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"minSamples": 20, "judge": judge, **kw})


def failed_analyses(s: AnalysisSpec, draws: int, canary_n: int, stable_n: int, **kw: Any) -> int:
    rng = np.random.default_rng(2026)
    return sum(
        analysis.judge(s, syn.window(rng, canary_n, stable_n, **kw))[0] == "Fail" for _ in range(draws)
    )


def test_healthy_canaries_fail_fewer_than_1_in_100_analyses_and_fewer_than_with_the_threshold_judge() -> None:
    # 1000 windows of a canary identical to stable (200 canary, 800 stable requests), default limits
    statistical_fails = failed_analyses(spec(), 1000, 200, 800)
    threshold_fails = failed_analyses(spec("threshold"), 1000, 200, 800)
    assert statistical_fails < 10, statistical_fails  # measured: 0 in 1000
    assert threshold_fails > statistical_fails, threshold_fails  # measured: 10 in 1000


def test_small_windows_do_not_roll_back_healthy_canaries_as_the_p95_ratio_does() -> None:
    # 40 canary requests against 160: the integration tests' window, where p95 is two requests
    statistical_fails = failed_analyses(spec(), 300, 40, 160)
    threshold_fails = failed_analyses(spec("threshold"), 300, 40, 160)
    assert statistical_fails <= 3, statistical_fails  # measured: 0 in 300
    assert threshold_fails >= 15, threshold_fails  # measured: 48 in 300 (16%)


def test_a_30_percent_latency_shift_is_caught_with_limits_the_threshold_judge_cannot_use() -> None:
    # limits of 1.2: tight enough to matter for a 30% shift; the statistical judge keeps healthy
    # canaries passing with them, the threshold judge does not
    caught = failed_analyses(spec(builtin=TIGHT), 200, 200, 800, shift=1.3)
    assert caught >= 190, caught  # measured: 200 of 200
    assert failed_analyses(spec(builtin=TIGHT), 300, 200, 800) <= 3  # measured: 0 of 300
    assert failed_analyses(spec("threshold", builtin=TIGHT), 300, 200, 800) >= 3  # measured: 5 of 300


def test_a_doubled_error_rate_is_caught() -> None:
    # 5% -> 10% failures, 1000 canary requests in the window (about 3.3/s over 5m), default limit 0.02
    caught = failed_analyses(spec(), 200, 1000, 4000, canary_errors=0.10, stable_errors=0.05)
    assert caught >= 190, caught  # measured: 198 of 200 (the threshold judge: 198 too)
    verdicts = analysis.judge(
        spec(), syn.window(np.random.default_rng(1), 1000, 4000, canary_errors=0.10, stable_errors=0.05)
    )[1]
    assert {m.name for m in verdicts if m.verdict == "Fail"} == {"errorRate"}


def test_a_10_point_drop_in_a_success_rate_is_caught() -> None:
    rng = np.random.default_rng(7)
    caught = 0
    for _ in range(200):
        canary_ok, stable_ok = rng.binomial(400, 0.70), rng.binomial(1600, 0.80)
        obs = Observation(canary_ok / 400, stable_ok / 1600, 400, 1600)
        v = statistical.rate("taskSuccess", obs, 0.05, 20, 0.01, worse="lower", what="succeeds less often")
        caught += v.verdict == "Fail"
    assert caught >= 180, caught  # measured: 194 of 200
    same = Observation(0.8, 0.8, 400, 1600)
    assert statistical.rate("taskSuccess", same, 0.05, 20, 0.01, worse="lower").verdict == "Pass"


def test_the_limit_is_the_size_that_matters_not_a_margin_the_interval_must_clear() -> None:
    # 5 of 200 canary requests failed, 1 of 800 stable: +0.024, above the 0.02 limit, and significant
    obs = Observation(5 / 200, 1 / 800, 200, 800)
    v = statistical.rate("errorRate", obs, 0.02, 20, 0.0025)
    assert v.verdict == "Fail", v.message
    assert v.effect_low is not None and v.effect_low < 0.02  # a margin test would have passed it
    assert v.p_value is not None and v.p_value == pytest.approx(0.0015, abs=0.0001)


def test_too_few_samples_stay_inconclusive() -> None:
    obs = syn.window(np.random.default_rng(3), 15, 800, shift=3.0, canary_errors=0.5)
    overall, verdicts = analysis.judge(spec(), obs)
    assert overall == "Inconclusive"
    assert all(v.verdict == "Inconclusive" for v in verdicts)
    assert "15 canary requests < minSamples 20" in verdicts[0].message
    few_stable = syn.window(np.random.default_rng(3), 200, 10)
    assert "10 stable requests < minSamples 20" in analysis.judge(spec(), few_stable)[1][0].message


def test_statistical_fails_only_where_the_threshold_judge_fails_and_never_passes_where_it_fails() -> None:
    rng = np.random.default_rng(11)
    held = 0
    for shift, errors in [(1.0, 0.01), (1.3, 0.02), (1.6, 0.05), (2.0, 0.2)] * 10:
        obs = syn.window(rng, 60, 240, shift=shift, canary_errors=errors)
        stat = {v.name: v.verdict for v in analysis.judge(spec(), obs)[1]}
        thr = {v.name: v.verdict for v in analysis.judge(spec("threshold"), obs)[1]}
        for name, verdict in stat.items():
            if verdict == "Fail":
                assert thr[name] == "Fail", (name, stat, thr)
            if thr[name] == "Fail":
                assert verdict != "Pass", (name, stat, thr)  # not significant yet: Inconclusive
                held += verdict == "Inconclusive"
    assert held > 0  # the case happens in these draws: 60 canary requests are often too few


def test_a_difference_beyond_the_limit_that_could_be_noise_holds_instead_of_passing() -> None:
    # 4 of 40 canary requests failed, 4 of 160 stable: +0.075 is beyond 0.02, but p is about 0.06
    v = statistical.rate("errorRate", Observation(4 / 40, 4 / 160, 40, 160), 0.02, 20, 0.0025)
    assert v.verdict == "Inconclusive" and v.p_value is not None and v.p_value > 0.0025
    assert (
        v.message.startswith("canary looks worse: +0.0750") and "cannot tell it from noise yet" in v.message
    )


def test_each_verdict_explains_itself_with_effect_interval_p_value_and_counts() -> None:
    obs = syn.window(np.random.default_rng(5), 300, 1200, shift=2.0)
    _, verdicts = analysis.judge(spec(), obs)
    p95 = next(v for v in verdicts if v.name == "p95Latency")
    assert p95.verdict == "Fail"
    assert p95.samples == 300 and p95.stable_samples == 1200
    assert p95.effect is not None and p95.effect_low is not None and p95.effect_high is not None
    assert p95.effect_low < p95.effect < p95.effect_high and p95.effect_low > 1.5
    assert p95.p_value is not None and p95.p_value < 0.0025
    assert p95.message.startswith("canary is slower than stable: p95 latency ratio")
    assert "99.5% CI" in p95.message and "above 1.5" in p95.message
    error = next(v for v in verdicts if v.name == "errorRate")
    assert error.verdict == "Pass" and error.message.startswith("no evidence the canary fails more often")


def test_confidence_is_shared_among_the_checks_of_an_analysis() -> None:
    obs = syn.window(np.random.default_rng(5), 300, 1200)
    _, four = analysis.judge(spec(), obs)
    _, one = analysis.judge(
        spec(builtin={"maxTimePerTokenRatio": None, "maxQueueTimeRatio": None, "maxErrorRateIncrease": None}),
        obs,
    )
    assert "p < 0.0025" in (four[1].threshold or "")  # 0.01 over 4 checks
    assert "p < 0.01" in (one[0].threshold or "")


def test_latency_checks_without_histograms_are_inconclusive() -> None:
    obs = {"p95Latency": Observation(0.5, 0.2, 200, 800)}
    _, verdicts = analysis.judge(spec(), obs)
    assert verdicts[0].verdict == "Inconclusive"
    assert verdicts[0].message == "no histogram for canary or stable in the window"


def test_threshold_judge_is_still_the_default_and_unchanged() -> None:
    assert AnalysisSpec().judge == "threshold"
    obs = {"p95Latency": Observation(0.31, 0.2, 200, 800)}  # ratio 1.55: a threshold fail
    assert analysis.judge(AnalysisSpec.model_validate({"minSamples": 20}), obs)[1][0].verdict == "Fail"


# --- the numbers underneath ------------------------------------------------------------------


def test_histogram_from_cumulative_buckets_as_prometheus_returns_them() -> None:
    h = stats.Histogram.from_cumulative({0.1: 2, 0.2: 5, float("inf"): 7})
    assert h.bounds == (0.1, 0.2, float("inf")) and h.counts == (2, 3, 2)
    # a drop between bounds (series scraped at different moments) is clamped, +Inf added
    assert stats.Histogram.from_cumulative({0.1: 4, 0.2: 3}).counts == (4, 0, 0)


@pytest.mark.parametrize(("q", "expected"), [(0.5, 0.125), (0.25, 0.075), (1.0, 0.2)])
def test_histogram_quantile_interpolates_inside_the_bucket_as_prometheus_does(
    q: float, expected: float
) -> None:
    # 2 observations in (0, 0.1], 4 in (0.1, 0.2]: rank 3 of 6 is 1/4 into the second bucket
    counts = np.array([2.0, 4.0, 0.0])
    assert float(stats.histogram_quantile(q, (0.1, 0.2, float("inf")), counts)[0]) == pytest.approx(expected)


def test_histogram_quantile_in_the_inf_bucket_answers_the_largest_finite_bound() -> None:
    assert (
        float(stats.histogram_quantile(0.99, (0.1, 0.2, float("inf")), np.array([1.0, 1.0, 8.0]))[0]) == 0.2
    )


def test_fisher_and_newcombe_agree_on_a_textbook_table() -> None:
    c = stats.proportions(10, 100, 2, 100, confidence=0.975)
    assert c.effect == pytest.approx(0.08)
    # one-sided Fisher exact: P(X >= 10) for X ~ hypergeometric(200 draws, 12 failures, 100 canary)
    tail = sum(math.comb(12, k) * math.comb(188, 100 - k) for k in range(10, 13)) / math.comb(200, 100)
    assert c.p_value == pytest.approx(tail)
    assert 0.0 < c.low < 0.08 < c.high  # Newcombe's 95% interval excludes 0
    zero = stats.proportions(0, 50, 0, 200, confidence=0.99)
    assert zero.p_value == 1.0 and zero.low < 0 < zero.high


def test_the_same_counts_always_give_the_same_interval() -> None:
    obs = syn.window(np.random.default_rng(9), 100, 400, shift=1.2)
    a = stats.histograms(
        obs["p95Latency"].canary_histogram,  # type: ignore[arg-type]
        obs["p95Latency"].stable_histogram,  # type: ignore[arg-type]
        statistic=0.95,
        confidence=0.99,
    )
    b = stats.histograms(
        obs["p95Latency"].canary_histogram,  # type: ignore[arg-type]
        obs["p95Latency"].stable_histogram,  # type: ignore[arg-type]
        statistic=0.95,
        confidence=0.99,
    )
    assert a == b
