"""Canary analysis: the PromQL each check runs, and the verdict from the numbers it returns.

Every check compares canary pods with stable pods over the same window (Kayenta's idea), so
a slow cluster does not fail a good canary. Too few canary requests is Inconclusive, never
Pass; a missing or NaN value is Inconclusive; Prometheus unreachable is a separate outcome
the state machine treats as hold. Each engine writes its built-in checks' PromQL
(:mod:`.engines`) with the helpers here; TGI and vLLM create some series on first use, so counts
over the window are taken with :func:`window_increase`, never ``increase()`` alone. Pure: queries
are strings, values come in as arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec, MetricVerdict, Verdict
from kubetune.controllers.modeldeployment import statistical
from kubetune.controllers.modeldeployment.statistical import Observation as Observation

REVISION_LABEL = "kubetune_io_revision"  # pod label kubetune.io/revision, as relabelled by Prometheus


REV = "$REVISION"


@dataclass(frozen=True)
class Query:
    """The PromQL for one check, with ``$REVISION`` standing for each revision in turn."""

    name: str
    value: str
    samples: str
    buckets: str | None = None  # per-``le`` counts of the check's histogram (statistical judge)

    def for_revision(self, revision: str) -> tuple[str, str]:
        """(value query, sample-count query) for one revision."""
        return self.value.replace(REV, revision), self.samples.replace(REV, revision)

    def buckets_for(self, revision: str) -> str | None:
        """The bucket-count query for one revision: one result per ``le``."""
        return None if self.buckets is None else self.buckets.replace(REV, revision)


def selector(namespace: str, rev: str) -> str:
    """The label matchers of one revision's pods in ``namespace``."""
    return f'namespace="{namespace}",{REVISION_LABEL}="{rev}"'


# How far back a series counts as already existing when a window starts. A series with no sample
# in this much time before the window is new (a new pod, or a failure reason that just happened
# for the first time); one seen in it is not, even across failed scrapes (which write stale
# markers that the instant selector `x offset w` would stop at).
HISTORY = "1h"


def window_increase(series: str, window: str) -> str:
    """PromQL, one result per series: how much the counter ``series`` grew in the last ``window``.

    ``increase()`` cannot be used alone against TGI, which creates a series only when it first
    counts something (``tgi_request_failure{err="generation"}`` is born at 1, a new pod's
    ``tgi_request_count`` at its first scrape): a series born inside the window has no earlier
    sample, so ``increase()`` never sees its first value, and a series with one sample has no
    increase at all. So, per series, with L the last value in the window and S the last value
    before it (up to :data:`HISTORY` back):

    - no reset in the window and S <= L: ``L - S``, exact (no extrapolation);
    - no S (born in the window) or L < S (restarted between S and the window's first sample,
      e.g. a container restart that recreated its series): ``L``, counted from zero;
    - a reset inside the window (``resets() > 0``: the same series dropped, e.g. TGI restarted
      in the same pod): ``increase()``, whose reset handling adds the value before each drop;
      it extrapolates to the window's edges, so that result is not a whole number.

    A new pod is a new label set (``pod``), hence a series born in the window: counted from
    zero. Nothing is ever negative. Series with no sample in the window give no result, so a
    revision whose pods never counted anything stays empty (not 0). One loss remains: a series
    both born and reset inside one window (a pod crash-looping right after its first scrape)
    misses its first sample, as ``increase()`` does; the controller's restart check rolls such a
    canary back anyway.
    """
    last = f"last_over_time({series}[{window}])"
    before = f"last_over_time({series}[{HISTORY}] offset {window})"
    return (
        f"(({last} - (({before} <= {last}) or ({last} * 0)))"
        f" unless (resets({series}[{window}]) > 0))"
        f" or increase({series}[{window}])"
    )


def revision_query(template: str, *, revision: str, namespace: str, window: str) -> str:
    """A rate metric's PromQL (events or total) for one revision, placeholders filled."""
    return (
        template.replace("{{revision}}", revision)
        .replace("{{namespace}}", namespace)
        .replace("{{window}}", window)
    )


def custom_query(template: str, *, canary: str, stable: str, namespace: str, window: str) -> str:
    """A custom metric's PromQL with its placeholders filled."""
    return (
        template.replace("{{canary}}", canary)
        .replace("{{stable}}", stable)
        .replace("{{namespace}}", namespace)
        .replace("{{window}}", window)
    )


def _finite(x: float | None) -> bool:
    return x is not None and not math.isnan(x) and not math.isinf(x)


def _ratio_check(
    name: str, obs: Observation, limit: float | None, min_samples: int, floor: float
) -> MetricVerdict:
    """canary/stable must stay <= limit; values under ``floor`` seconds count as equal (noise)."""
    threshold = f"canary/stable <= {limit}"
    base = MetricVerdict(
        name=name,
        verdict="Inconclusive",
        canary=obs.canary,
        stable=obs.stable,
        threshold=threshold,
        samples=obs.samples,
    )
    if obs.samples < min_samples:
        return base.model_copy(
            update={"message": f"{obs.samples} canary requests < minSamples {min_samples}"}
        )
    if not _finite(obs.canary) or not _finite(obs.stable):
        return base.model_copy(update={"message": "no value for canary or stable in the window"})
    assert obs.canary is not None and obs.stable is not None
    canary, stable = max(obs.canary, floor), max(obs.stable, floor)
    ratio = canary / stable
    verdict: Verdict = "Pass" if limit is None or ratio <= limit else "Fail"
    return base.model_copy(update={"verdict": verdict, "message": f"ratio {ratio:.2f}"})


def _threshold_verdicts(spec: AnalysisSpec, observations: dict[str, Observation]) -> list[MetricVerdict]:
    """The threshold judge: each built-in check against its limit, in this window alone."""
    checks = spec.builtin
    out: list[MetricVerdict] = []
    if checks.max_error_rate_increase is not None and "errorRate" in observations:
        obs = observations["errorRate"]
        limit = checks.max_error_rate_increase
        v = MetricVerdict(
            name="errorRate",
            verdict="Inconclusive",
            canary=obs.canary,
            stable=obs.stable,
            threshold=f"canary - stable <= {limit}",
            samples=obs.samples,
        )
        if obs.samples < spec.min_samples:
            v = v.model_copy(
                update={"message": f"{obs.samples} canary requests < minSamples {spec.min_samples}"}
            )
        elif not _finite(obs.canary):
            v = v.model_copy(update={"message": "no canary error rate in the window"})
        else:
            assert obs.canary is not None
            stable = obs.stable if _finite(obs.stable) else 0.0
            assert stable is not None
            increase = obs.canary - stable
            verdict: Verdict = "Pass" if increase <= limit else "Fail"
            v = v.model_copy(update={"verdict": verdict, "message": f"increase {increase:.4f}"})
        out.append(v)
    ratios = {
        "p95Latency": checks.max_p95_latency_ratio,
        "timePerToken": checks.max_time_per_token_ratio,
        "queueTime": checks.max_queue_time_ratio,
        "timeToFirstToken": checks.max_time_to_first_token_ratio,
    }
    for name, max_ratio in ratios.items():
        if max_ratio is not None and name in observations:
            # Sub-millisecond differences are noise, not regressions.
            out.append(_ratio_check(name, observations[name], max_ratio, spec.min_samples, floor=0.001))
    return out


def judge(spec: AnalysisSpec, observations: dict[str, Observation]) -> tuple[Verdict, list[MetricVerdict]]:
    """Verdicts for every enabled check; overall Fail if any fails, else Inconclusive if any is.

    The built-in checks follow ``spec.judge``: limits alone (threshold), or limits and
    significance (:mod:`.statistical`). Custom ``query`` metrics keep their fixed range either
    way; custom ``rate`` metrics are always compared with stable statistically, sharing the
    confidence with the statistical built-in checks.
    """
    out: list[MetricVerdict] = []
    rates = [m for m in spec.metrics if m.rate is not None]
    if spec.judge == "statistical":
        builtins = len(statistical.enabled_builtins(spec, observations))
        out += statistical.builtin_verdicts(spec, observations, builtins + len(rates))
    else:
        builtins = 0
        out += _threshold_verdicts(spec, observations)
    alpha = (1 - spec.confidence) / max(1, builtins + len(rates))
    for metric in spec.metrics:
        obs = observations.get(metric.name, Observation(None, None, 0))
        if metric.rate is not None:
            worse: Literal["higher", "lower"] = "lower" if metric.rate.better == "higher" else "higher"
            what = "succeeds less often" if worse == "lower" else "has a higher rate"
            out.append(
                statistical.rate(
                    metric.name, obs, metric.rate.max_change, spec.min_samples, alpha, worse, what
                )
            )
            continue
        assert metric.threshold is not None
        lo, hi = metric.threshold.min, metric.threshold.max
        desc = " and ".join(
            x for x in (f">= {lo}" if lo is not None else "", f"<= {hi}" if hi is not None else "") if x
        )
        v = MetricVerdict(
            name=metric.name,
            verdict="Inconclusive",
            canary=obs.canary,
            stable=obs.stable,
            threshold=desc,
            samples=obs.samples,
        )
        if obs.samples < spec.min_samples:
            v = v.model_copy(
                update={"message": f"{obs.samples} canary requests < minSamples {spec.min_samples}"}
            )
        elif not _finite(obs.canary):
            v = v.model_copy(update={"message": "query returned no value"})
        else:
            assert obs.canary is not None
            ok = (lo is None or obs.canary >= lo) and (hi is None or obs.canary <= hi)
            v = v.model_copy(update={"verdict": "Pass" if ok else "Fail"})
        out.append(v)
    verdicts = {m.verdict for m in out}
    overall: Verdict = (
        "Fail"
        if "Fail" in verdicts
        else "Inconclusive"
        if ("Inconclusive" in verdicts or not out)
        else "Pass"
    )
    return overall, out
