"""Verdicts of the statistical judge (``analysis.judge: statistical``) and of custom rate metrics.

A check fails only when both hold:

1. the canary is worse than stable with the stated confidence: the one-sided p-value of
   :mod:`.stats` (Fisher's exact test on failures; Mann-Whitney U on the latency histograms)
   is below ``alpha = (1 - confidence) / checks``, the confidence shared among the analysis'
   statistical checks (Bonferroni), so a healthy canary fails a whole analysis with at most
   ``1 - confidence`` probability; and
2. the difference is as large as the check's limit says matters: the same limit fields as the
   threshold judge (``maxErrorRateIncrease``, ``max*Ratio``), compared with the measured effect.

A difference beyond the limit that is not significant yet is **Inconclusive**, never Pass: the
rollout holds (``onInconclusive``) and the next window, with more requests, decides. So the
statistical judge never passes a check the threshold judge fails, and fails only those whose
difference is not chance (a p95 made of two requests is not enough). The limit is the size
of a regression that counts, not a margin the canary must be proven inside: testing "increase <=
limit" as the null hypothesis would let a canary failing 20 times as often as stable through
while its interval still reached below the limit.

Every verdict carries the effect, its confidence interval, the p-value, both sample counts and
one sentence of why. Too few canary (or stable) requests for ``minSamples`` stays Inconclusive.
Pure: numbers in, verdicts out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec, MetricVerdict, Verdict
from kubetune.controllers.modeldeployment import stats


@dataclass(frozen=True)
class Observation:
    """One check's numbers over the window: canary and stable values and the canary sample count.

    The statistical judge also needs the stable request count and, for latency checks, both
    revisions' histograms over the window (:class:`stats.Histogram`); None where not asked.
    """

    canary: float | None
    stable: float | None
    samples: int
    stable_samples: int | None = None
    canary_histogram: stats.Histogram | None = None
    stable_histogram: stats.Histogram | None = None


# Sub-millisecond values are noise, not regressions (as in the threshold judge).
FLOOR_S = 0.001

STATISTIC: dict[str, stats.Statistic] = {
    "p95Latency": 0.95,
    "timePerToken": "mean",
    "queueTime": "mean",
    "timeToFirstToken": "mean",
}
WHAT = {
    "p95Latency": "p95 latency",
    "timePerToken": "time per token",
    "queueTime": "queue time",
    "timeToFirstToken": "time to first token",
}


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _p(p: float) -> str:
    return f"p={p:.2g}" if p >= 0.0001 else "p<0.0001"


def _level(alpha: float) -> str:
    return f"{stats.interval_level(1 - alpha) * 100:.4g}%"


def _too_few(obs: Observation, min_samples: int) -> str | None:
    if obs.samples < min_samples:
        return f"{obs.samples} canary requests < minSamples {min_samples}"
    if obs.stable_samples is not None and obs.stable_samples < min_samples:
        return f"{obs.stable_samples} stable requests < minSamples {min_samples}: nothing to compare with"
    return None


def _verdict(
    base: MetricVerdict, c: stats.Comparison, alpha: float, beyond: bool, sentence: str
) -> MetricVerdict:
    significant = c.p_value < alpha
    # beyond the limit but not yet significant: the threshold judge would fail it, so it must not
    # pass; the next window, with more requests, decides
    verdict: Verdict = ("Fail" if significant else "Inconclusive") if beyond else "Pass"
    return base.model_copy(
        update={
            "verdict": verdict,
            "effect": c.effect,
            "effect_low": c.low,
            "effect_high": c.high,
            "p_value": c.p_value,
            "message": sentence,
        }
    )


def rate(
    name: str,
    obs: Observation,
    limit: float,
    min_samples: int,
    alpha: float,
    worse: Literal["higher", "lower"] = "higher",
    what: str = "fails more often",
) -> MetricVerdict:
    """canary - stable of a rate (failures over requests; with ``worse="lower"``, successes):
    Fail when significantly worse (Fisher's exact test) and worse by more than ``limit``."""
    sign = "+" if worse == "higher" else "-"
    base = MetricVerdict(
        name=name,
        verdict="Inconclusive",
        canary=obs.canary,
        stable=obs.stable,
        threshold=f"canary - stable {'<=' if worse == 'higher' else '>='} {sign}{limit:g} "
        f"unless not significant at p < {alpha:.2g}",
        samples=obs.samples,
        stable_samples=obs.stable_samples,
    )
    short = _too_few(obs, min_samples)
    if short is not None:
        return base.model_copy(update={"message": short})
    if not _finite(obs.canary) or not _finite(obs.stable) or not obs.stable_samples:
        return base.model_copy(update={"message": "no rate for canary or stable in the window"})
    assert obs.canary is not None and obs.stable is not None
    c = stats.proportions(
        round(obs.canary * obs.samples),
        obs.samples,
        round(obs.stable * obs.stable_samples),
        obs.stable_samples,
        confidence=1 - alpha,
        worse=worse,
    )
    beyond = c.effect > limit if worse == "higher" else c.effect < -limit
    ci = f"{_level(alpha)} CI {c.low:+.4f}..{c.high:+.4f}"
    allowed = f"{sign}{limit:g}"
    if c.p_value < alpha and beyond:
        why = f"canary {what} than stable: {c.effect:+.4f} ({ci}) is beyond {allowed}, {_p(c.p_value)} < {alpha:.2g}"
    elif c.p_value < alpha:
        why = f"canary {what} ({_p(c.p_value)}) but by {c.effect:+.4f} ({ci}), within {allowed}"
    elif beyond:
        why = (
            f"canary looks worse: {c.effect:+.4f} ({ci}) is beyond {allowed}, but {_p(c.p_value)} >= "
            f"{alpha:.2g} cannot tell it from noise yet; more requests will"
        )
    else:
        why = f"no evidence the canary {what}: {_p(c.p_value)} >= {alpha:.2g} ({c.effect:+.4f}, {ci})"
    return _verdict(base, c, alpha, beyond, why)


def latency(name: str, obs: Observation, limit: float, min_samples: int, alpha: float) -> MetricVerdict:
    """canary/stable of a latency statistic: Fail when the distribution is significantly slower
    (Mann-Whitney U) and the ratio is above ``limit``."""
    base = MetricVerdict(
        name=name,
        verdict="Inconclusive",
        canary=obs.canary,
        stable=obs.stable,
        threshold=f"canary/stable <= {limit:g} unless not significant at p < {alpha:.2g}",
        samples=obs.samples,
        stable_samples=obs.stable_samples,
    )
    short = _too_few(obs, min_samples)
    if short is not None:
        return base.model_copy(update={"message": short})
    ch, sh = obs.canary_histogram, obs.stable_histogram
    if (
        not _finite(obs.canary)
        or not _finite(obs.stable)
        or ch is None
        or sh is None
        or ch.total == 0
        or sh.total == 0
    ):
        return base.model_copy(update={"message": "no histogram for canary or stable in the window"})
    if ch.bounds != sh.bounds:
        return base.model_copy(update={"message": "canary and stable histograms have different buckets"})
    assert obs.canary is not None and obs.stable is not None
    point = max(obs.canary, FLOOR_S) / max(obs.stable, FLOOR_S)
    c = stats.histograms(ch, sh, statistic=STATISTIC[name], confidence=1 - alpha, point=point)
    what = WHAT[name]
    ci = f"{_level(alpha)} CI {c.low:.2f}..{c.high:.2f}"
    if c.p_value < alpha and point > limit:
        why = (
            f"canary is slower than stable: {what} ratio {point:.2f} ({ci}) is above {limit:g}, "
            f"{_p(c.p_value)} < {alpha:.2g}"
        )
    elif c.p_value < alpha:
        why = (
            f"canary is slower ({_p(c.p_value)}) but its {what} ratio {point:.2f} ({ci}) is within {limit:g}"
        )
    elif point > limit:
        why = (
            f"canary looks slower: {what} ratio {point:.2f} ({ci}) is above {limit:g}, but {_p(c.p_value)} "
            f">= {alpha:.2g} cannot tell it from noise yet; more requests will"
        )
    else:
        why = f"no evidence the canary is slower: {_p(c.p_value)} >= {alpha:.2g} ({what} ratio {point:.2f}, {ci})"
    return _verdict(base, c, alpha, point > limit, why)


def enabled_builtins(spec: AnalysisSpec, observations: dict[str, Observation]) -> dict[str, float]:
    """The enabled built-in checks that were observed, with their limits, in the judges' order."""
    checks = spec.builtin
    limits: dict[str, float | None] = {
        "errorRate": checks.max_error_rate_increase,
        "p95Latency": checks.max_p95_latency_ratio,
        "timePerToken": checks.max_time_per_token_ratio,
        "queueTime": checks.max_queue_time_ratio,
        "timeToFirstToken": checks.max_time_to_first_token_ratio,
    }
    return {name: limit for name, limit in limits.items() if limit is not None and name in observations}


def builtin_verdicts(
    spec: AnalysisSpec, observations: dict[str, Observation], checks_in_analysis: int | None = None
) -> list[MetricVerdict]:
    """Verdicts of the enabled built-in checks that were observed, in the threshold judge's order.

    ``checks_in_analysis`` is how many statistical checks share the confidence (default: these).
    """
    enabled = enabled_builtins(spec, observations)
    alpha = (1 - spec.confidence) / max(1, checks_in_analysis or len(enabled))
    out: list[MetricVerdict] = []
    for name, limit in enabled.items():
        if name == "errorRate":
            out.append(rate(name, observations[name], limit, spec.min_samples, alpha))
        else:
            out.append(latency(name, observations[name], limit, spec.min_samples, alpha))
    return out
