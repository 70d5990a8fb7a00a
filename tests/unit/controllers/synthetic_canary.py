"""Seeded synthetic canary windows: TGI-bucketed latency histograms and failure counts.

Latencies are log-normal (request latencies are right-skewed), bucketed into TGI's 35
geometric duration buckets exactly as ``kubetune serve`` and TGI do; failures are binomial. The
values next to the histograms are what Prometheus would answer for the threshold judge: the p95
from ``histogram_quantile`` on the same buckets, the exact mean from ``_sum / _count``. Shared by
the unit tests of the statistical judge and ``benchmarks/canary/judge_draws.py``.
"""

from __future__ import annotations

import numpy as np

from kubetune.controllers.modeldeployment import analysis, stats
from kubetune.serving.metrics import duration_buckets

FINITE = duration_buckets()
BOUNDS = (*FINITE, float("inf"))

# medians of each latency check's histogram (seconds), and the log-normal spread
MEDIANS = {"p95Latency": 0.2, "timePerToken": 0.02, "queueTime": 0.005}
SIGMA = 0.5


def histogram(rng: np.random.Generator, median: float, n: int) -> tuple[stats.Histogram, np.ndarray]:
    """``n`` log-normal latencies around ``median``, bucketed like TGI; also the raw values."""
    values = rng.lognormal(np.log(median), SIGMA, n)
    index = np.searchsorted(np.asarray(FINITE), values, side="left")  # le: value <= bound
    counts = np.bincount(index, minlength=len(BOUNDS))
    return stats.Histogram(BOUNDS, tuple(float(c) for c in counts)), values


def window(
    rng: np.random.Generator,
    canary_n: int,
    stable_n: int,
    *,
    shift: float = 1.0,
    canary_errors: float = 0.01,
    stable_errors: float = 0.01,
) -> dict[str, analysis.Observation]:
    """One analysis window: the canary's latencies ``shift`` times stable's, error rates as given."""
    out: dict[str, analysis.Observation] = {}
    failed_c, failed_s = rng.binomial(canary_n, canary_errors), rng.binomial(stable_n, stable_errors)
    out["errorRate"] = analysis.Observation(failed_c / canary_n, failed_s / stable_n, canary_n, stable_n)
    for name, median in MEDIANS.items():
        hc, xc = histogram(rng, median * shift, canary_n)
        hs, xs = histogram(rng, median, stable_n)
        if name == "p95Latency":
            vc = float(stats.histogram_quantile(0.95, BOUNDS, np.asarray(hc.counts))[0])
            vs = float(stats.histogram_quantile(0.95, BOUNDS, np.asarray(hs.counts))[0])
        else:
            vc, vs = float(xc.mean()), float(xs.mean())
        out[name] = analysis.Observation(vc, vs, canary_n, stable_n, hc, hs)
    return out
