"""One canary analysis run: ask Prometheus for every check's numbers, judge them, report an outcome.

Sits between :mod:`.analysis` (which PromQL, which verdict) and :mod:`.canary` (what a verdict
does to the rollout). For each enabled built-in check it asks the value for the canary and the
stable revision and the canary's request count over the window; for each custom metric, its
filled-in query; then :func:`analysis.judge` decides. Every question goes through an injected
function (in production ``functools.partial(prometheus.Client(url).query, at=now.timestamp())``,
so one run sees one instant), which keeps network and clock out of here. The built-in checks go
through ``query``; custom queries, the tenant's own PromQL, only through ``tenant_query``, which
in production enforces the object's namespace (prom-label-proxy, see :mod:`.tenancy`). Without
a ``tenant_query`` custom metrics are Inconclusive with ``custom_problem`` as their message,
and their PromQL goes nowhere.

A :class:`~kubetune.clients.prometheus.PrometheusUnreachable` from any query ends the run as
``AnalysisOutcome(reachable=False)``: the state machine holds and never promotes blind. A query
Prometheus rejects (a typo in a custom metric) makes only that check Inconclusive, with the
client's one-line reason (HTTP status and Prometheus' error type, never the response body).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kubetune.api.v1alpha1.base import parse_duration
from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec, MetricVerdict, RateQueries
from kubetune.clients.prometheus import PrometheusQueryError, PrometheusUnreachable
from kubetune.controllers.modeldeployment import analysis, engines, stats, tenancy
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome

QueryFn = Callable[[str], float | None]
"""One PromQL instant query -> its single value; None for no series, NaN as computed."""

BucketsFn = Callable[[str], dict[str, float]]
"""One PromQL instant query -> its series by ``le`` (a histogram's cumulative bucket counts)."""


def promql_duration(duration: str) -> str:
    """A spec duration written the way PromQL range selectors accept (``"1.5m"`` -> ``"90s"``).

    The API allows decimals (``1.5m``) that PromQL rejects, so windows are always rewritten in
    whole seconds, or milliseconds when needed.
    """
    ms = round(parse_duration(duration) * 1000)
    if ms <= 0:
        raise ValueError(f"window {duration!r} must be longer than 0")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def enabled_builtins(spec: AnalysisSpec) -> set[str]:
    """Names of the built-in checks the spec turns on (a null limit disables one)."""
    limits = {
        "errorRate": spec.builtin.max_error_rate_increase,
        "p95Latency": spec.builtin.max_p95_latency_ratio,
        "timePerToken": spec.builtin.max_time_per_token_ratio,
        "queueTime": spec.builtin.max_queue_time_ratio,
        "timeToFirstToken": spec.builtin.max_time_to_first_token_ratio,
    }
    return {name for name, limit in limits.items() if limit is not None}


class _Asker:
    """Runs each distinct query once per analysis run and keeps per-check query errors."""

    def __init__(
        self, query: QueryFn, errors: dict[str, str] | None = None, buckets: BucketsFn | None = None
    ) -> None:
        self._query = query
        self._buckets = buckets
        self._seen: dict[str, float | None] = {}
        self._histograms: dict[str, stats.Histogram | None] = {}
        self.errors: dict[str, str] = {} if errors is None else errors

    def histogram(self, check: str, promql: str | None) -> stats.Histogram | None:
        """The histogram ``promql`` selects (None: not asked, nothing in the window, or an error)."""
        if promql is None or self._buckets is None:
            return None
        if promql not in self._histograms:
            try:
                by_le = self._buckets(promql)
                self._histograms[promql] = (
                    stats.Histogram.from_cumulative({float(le): v for le, v in by_le.items()})
                    if by_le
                    else None
                )
            except (PrometheusQueryError, ValueError) as exc:
                self.errors.setdefault(check, str(exc))
                self._histograms[promql] = None
        return self._histograms[promql]

    def ask(self, check: str, promql: str) -> float | None:
        if promql not in self._seen:
            try:
                self._seen[promql] = self._query(promql)
            except PrometheusQueryError as exc:
                self.errors.setdefault(check, str(exc))
                self._seen[promql] = None
        return self._seen[promql]


def _count(value: float | None) -> int:
    # increase() (used for a series that reset in the window) extrapolates to the window's
    # edges, so counts are not always whole numbers
    return 0 if value is None or math.isnan(value) or math.isinf(value) else max(0, round(value))


def analysis_outcome(
    spec: AnalysisSpec,
    *,
    namespace: str,
    canary: str,
    stable: str,
    query: QueryFn,
    tenant_query: QueryFn | None = None,
    custom_problem: str = tenancy.NO_TENANT_PROXY,
    buckets_query: BucketsFn | None = None,
    engine: str = "tgi",
) -> AnalysisOutcome:
    """Query, judge and summarise one analysis of ``canary`` against ``stable`` in ``namespace``.

    With ``judge: statistical`` it also asks the stable request count and, through
    ``buckets_query``, both revisions' latency histograms (without one, latency checks are
    Inconclusive). ``engine`` (``spec.runtime.engine``) picks the built-in checks' PromQL.
    """
    window = promql_duration(spec.window)
    statistical = spec.judge == "statistical"
    asker = _Asker(query, buckets=buckets_query)
    tenant_asker = _Asker(tenant_query, asker.errors) if tenant_query is not None else None
    observations: dict[str, analysis.Observation] = {}
    try:
        enabled = enabled_builtins(spec)
        canary_samples = 0
        for q in engines.get(engine).builtin_queries(namespace, window):
            canary_value_q, canary_count_q = q.for_revision(canary)
            stable_value_q, _ = q.for_revision(stable)
            canary_samples = _count(asker.ask(q.name, canary_count_q))
            if q.name not in enabled:
                continue
            extra: dict[str, Any] = {}
            if statistical:
                extra = {
                    "stable_samples": _count(asker.ask(q.name, q.for_revision(stable)[1])),
                    "canary_histogram": asker.histogram(q.name, q.buckets_for(canary)),
                    "stable_histogram": asker.histogram(q.name, q.buckets_for(stable)),
                }
            observations[q.name] = analysis.Observation(
                canary=asker.ask(q.name, canary_value_q),
                stable=asker.ask(q.name, stable_value_q),
                samples=canary_samples,
                **extra,
            )
        for metric in spec.metrics:
            value = None
            if tenant_asker is None:
                asker.errors.setdefault(metric.name, custom_problem)
            elif metric.rate is not None:
                observations[metric.name] = _rate(
                    tenant_asker, metric.name, metric.rate, (canary, stable), namespace, window
                )
                continue
            else:
                assert metric.query is not None
                promql = analysis.custom_query(
                    metric.query, canary=canary, stable=stable, namespace=namespace, window=window
                )
                value = tenant_asker.ask(metric.name, promql)
            observations[metric.name] = analysis.Observation(
                canary=value, stable=None, samples=canary_samples
            )
    except PrometheusUnreachable as exc:
        return AnalysisOutcome("Inconclusive", reachable=False, message=str(exc))
    verdict, metrics = analysis.judge(spec, observations)
    metrics = [_with_query_error(m, asker.errors) for m in metrics]
    return AnalysisOutcome(verdict, metrics, message=summary(verdict, metrics))


def _rate(
    asker: _Asker, name: str, rate: RateQueries, revisions: tuple[str, str], namespace: str, window: str
) -> analysis.Observation:
    """A rate metric's events/total for canary and stable; samples are each revision's total."""
    values: list[float | None] = []
    totals: list[int] = []
    for revision in revisions:

        def ask(template: str, revision: str = revision) -> float | None:
            return asker.ask(
                name, analysis.revision_query(template, revision=revision, namespace=namespace, window=window)
            )

        total = _count(ask(rate.total))
        events = _count(ask(rate.events))
        totals.append(total)
        values.append(min(events, total) / total if total > 0 else None)
    return analysis.Observation(values[0], values[1], totals[0], totals[1])


def _with_query_error(verdict: MetricVerdict, errors: dict[str, str]) -> MetricVerdict:
    if verdict.name in errors and verdict.verdict == "Inconclusive":
        return verdict.model_copy(update={"message": errors[verdict.name]})
    return verdict


def summary(verdict: str, metrics: list[MetricVerdict]) -> str:
    """One line for events and logs: the verdict and the checks that decided it."""
    deciding = [m for m in metrics if m.verdict == verdict] if verdict != "Pass" else metrics
    parts = [f"{m.name} ({m.message})" if m.message else m.name for m in deciding]
    return f"{verdict}: {', '.join(parts)}" if parts else verdict


def replica_failure(deployment: dict[str, object]) -> str | None:
    """The API server's refusal of a Deployment's pods: its ReplicaFailure condition, which the
    Deployment controller copies from the ReplicaSet that failed to create them."""
    status = deployment.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for cond in conditions if isinstance(conditions, list) else []:
        if isinstance(cond, dict) and cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return str(cond.get("message") or cond.get("reason") or "")
    return None
