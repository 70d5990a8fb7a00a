"""The statistics of the canary judge: is the canary worse than stable, or is it noise?

Two comparisons, both one-sided (only "canary worse" matters) and both from SciPy:

- :func:`proportions`: failures (or successes) over requests of canary and stable. The p-value
  is Fisher's exact test (exact at any count, so small samples need no special case); the
  effect is the difference of the two rates, with Newcombe's hybrid score interval (built from
  the two Wilson intervals), which keeps its coverage at 0 failures and small counts.
- :func:`histograms`: two Prometheus histograms (bucket counts over the window). The p-value
  is the Mann-Whitney U test on the bucketed values (ties handled by SciPy's tie correction),
  so a shift of the whole distribution is what counts, not the two or three requests that make
  a p95. The effect is the ratio of a statistic of the two histograms (the q-quantile computed
  as Prometheus' ``histogram_quantile`` does, or the mean), with a percentile bootstrap over the
  buckets (each revision's bucket counts redrawn, Poisson bootstrap).

Pure and deterministic: the bootstrap draws from a generator with a fixed seed, so the same
counts always give the same interval. No I/O, no clock; :mod:`.analysis` turns these numbers
into verdicts.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20  # fixed: the same counts give the same interval (the judge is pure)

Array = NDArray[Any]
Statistic = Literal["mean"] | float  # "mean", or a quantile in (0, 1)


@dataclass(frozen=True)
class Comparison:
    """Canary against stable: the effect with its confidence interval, and the one-sided p-value.

    ``effect`` is canary - stable for proportions and canary / stable for histograms; ``low``
    and ``high`` bound it with a two-sided interval at :func:`interval_level` of the judge's
    confidence, so each bound alone holds with that confidence. ``p_value`` is the chance of a
    difference at least this bad if canary and stable were the same.
    """

    effect: float
    low: float
    high: float
    p_value: float


def _scipy_stats() -> ModuleType:
    """``scipy.stats``, imported on first use: it adds ~75 MiB to the process, which an operator
    whose rollouts never run a statistical check does not pay (``benchmarks/operator``)."""
    return importlib.import_module("scipy.stats")


def interval_level(confidence: float) -> float:
    """Two-sided level whose one side holds with ``confidence`` (0.99 -> 0.98)."""
    return 2 * confidence - 1


@dataclass(frozen=True)
class Histogram:
    """A Prometheus histogram over a window: upper bounds (the last is +Inf) and per-bucket counts."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]

    @classmethod
    def from_cumulative(cls, by_le: Mapping[float, float]) -> Histogram:
        """From ``{le: cumulative count}`` as Prometheus returns ``sum by (le) (..._bucket)``.

        Counts that drop from one bound to the next (a scrape between series of one histogram)
        are clamped, as ``histogram_quantile`` does; a missing +Inf bucket is added with the
        largest count.
        """
        les = sorted(by_le)
        if not les or not math.isinf(les[-1]):
            les.append(math.inf)
        cumulative: list[float] = []
        for le in les:
            value = by_le.get(le, cumulative[-1] if cumulative else 0.0)
            value = 0.0 if not math.isfinite(value) else max(0.0, value)
            cumulative.append(max(value, cumulative[-1]) if cumulative else value)
        counts = [cumulative[0], *(b - a for a, b in itertools.pairwise(cumulative))]
        return cls(tuple(les), tuple(counts))

    @property
    def total(self) -> int:
        return round(sum(self.counts))

    def whole(self) -> Array:
        """Counts as whole numbers (``increase()`` extrapolates, so Prometheus' are not always)."""
        whole: Array = np.rint(np.asarray(self.counts, dtype=float)).astype(np.int64)
        return whole


def histogram_quantile(q: float, bounds: Sequence[float], counts: Array) -> Array:
    """Prometheus' ``histogram_quantile`` for each row of ``counts`` (per-bucket, not cumulative).

    Linear interpolation inside the bucket holding rank ``q * total``; the first bucket starts
    at 0; a rank in the +Inf bucket answers the largest finite bound; no observations: NaN.
    """
    rows = np.atleast_2d(counts).astype(float)
    cum = np.cumsum(rows, axis=1)
    total = cum[:, -1]
    rank = q * total
    index = np.argmax(cum >= rank[:, None] - 1e-9, axis=1)
    upper = np.asarray(bounds, dtype=float)
    lower = np.concatenate([[0.0], upper[:-1]])
    below = np.where(index > 0, cum[np.arange(len(rows)), np.maximum(index - 1, 0)], 0.0)
    in_bucket = rows[np.arange(len(rows)), index]
    frac = np.divide(rank - below, in_bucket, out=np.ones_like(rank), where=in_bucket > 0)
    value = lower[index] + (upper[index] - lower[index]) * frac
    last_finite = upper[-2] if len(upper) > 1 else math.nan
    value = np.where(np.isinf(upper[index]), last_finite, value)
    return np.where(total > 0, value, math.nan)


def bucket_mean(bounds: Sequence[float], counts: Array) -> Array:
    """The mean of each row of ``counts``, every observation at its bucket's midpoint.

    The +Inf bucket counts at the largest finite bound. Only used for the bootstrap's spread:
    the mean itself comes exact from ``_sum / _count``.
    """
    rows = np.atleast_2d(counts).astype(float)
    upper = np.asarray(bounds, dtype=float)
    lower = np.concatenate([[0.0], upper[:-1]])
    mid = (lower + upper) / 2
    if len(upper) > 1:
        mid[-1] = upper[-2]
    total = rows.sum(axis=1)
    mean: Array = np.divide(rows @ mid, total, out=np.full(len(rows), math.nan), where=total > 0)
    return mean


def _statistic(statistic: Statistic, bounds: Sequence[float], counts: Array) -> Array:
    if statistic == "mean":
        return bucket_mean(bounds, counts)
    return histogram_quantile(float(statistic), bounds, counts)


def histograms(
    canary: Histogram,
    stable: Histogram,
    *,
    statistic: Statistic,
    confidence: float,
    point: float | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Comparison:
    """Is the canary's distribution larger (slower) than stable's?

    ``p_value``: one-sided Mann-Whitney U on the bucket indices. ``effect``: ``point`` when given
    (the exact ratio, e.g. of means from ``_sum/_count``), else the ratio of ``statistic`` on the
    two histograms; its interval is the bootstrap's, scaled to that point. Both histograms need
    the same bounds and at least one observation.
    """
    if canary.bounds != stable.bounds:
        raise ValueError("canary and stable histograms have different buckets")
    c, s = canary.whole(), stable.whole()
    if c.sum() == 0 or s.sum() == 0:
        raise ValueError("a histogram without observations cannot be compared")
    index = np.arange(len(c))
    u = _scipy_stats().mannwhitneyu(
        np.repeat(index, c), np.repeat(index, s), alternative="greater", method="asymptotic"
    )
    p_value = float(u.pvalue)
    if math.isnan(p_value):  # every observation in one bucket: no difference at all
        p_value = 1.0
    bounds = canary.bounds
    measured = _statistic(statistic, bounds, c[None, :])[0] / _statistic(statistic, bounds, s[None, :])[0]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    # Poisson bootstrap: each bucket's count redrawn as Poisson(count), the usual vectorised
    # stand-in for multinomial resampling at these sizes (and many times faster)
    boot_c = rng.poisson(c, size=(resamples, len(c)))
    boot_s = rng.poisson(s, size=(resamples, len(s)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = _statistic(statistic, bounds, boot_c) / _statistic(statistic, bounds, boot_s)
    ratios = ratios[np.isfinite(ratios)]
    tail = (1 - interval_level(confidence)) / 2 * 100
    if len(ratios) == 0 or not math.isfinite(measured) or measured <= 0:
        low, high = math.nan, math.nan
    else:
        low, high = (float(x) for x in np.percentile(ratios, [tail, 100 - tail]))
    effect = float(measured) if point is None else point
    if point is not None and math.isfinite(measured) and measured > 0:
        low, high = low * point / measured, high * point / measured
    return Comparison(effect, low, high, p_value)


def _wilson(k: int, n: int, level: float) -> tuple[float, float]:
    ci = _scipy_stats().binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def proportions(
    canary_events: int,
    canary_total: int,
    stable_events: int,
    stable_total: int,
    *,
    confidence: float,
    worse: Literal["higher", "lower"] = "higher",
) -> Comparison:
    """Is the canary's rate of events (failures, or successes with ``worse="lower"``) worse?

    ``effect`` is canary rate - stable rate with Newcombe's hybrid score interval; ``p_value``
    is one-sided Fisher exact in the ``worse`` direction. Totals must be positive.
    """
    if canary_total <= 0 or stable_total <= 0:
        raise ValueError("both revisions need requests to compare rates")
    ce = min(max(canary_events, 0), canary_total)
    se = min(max(stable_events, 0), stable_total)
    table = [[ce, canary_total - ce], [se, stable_total - se]]
    p_value = float(
        _scipy_stats().fisher_exact(table, alternative="greater" if worse == "higher" else "less").pvalue
    )
    level = interval_level(confidence)
    pc, ps = ce / canary_total, se / stable_total
    lc, uc = _wilson(ce, canary_total, level)
    ls, us = _wilson(se, stable_total, level)
    d = pc - ps
    low = d - math.sqrt((pc - lc) ** 2 + (us - ps) ** 2)
    high = d + math.sqrt((uc - pc) ** 2 + (ps - ls) ** 2)
    return Comparison(d, low, high, p_value)
