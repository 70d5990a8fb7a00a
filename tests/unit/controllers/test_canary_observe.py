"""One analysis run turns Prometheus answers into verdicts; an outage is a hold, never a pass."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec
from kubetune.clients.prometheus import PrometheusQueryError, PrometheusUnreachable
from kubetune.controllers.modeldeployment import engines, observe

NS, CANARY, STABLE = "team-a", "c0ffee", "5ab1e"


def spec(**kw: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"interval": "2s", "window": "10s", "minSamples": 20, **kw})


class FakePrometheus:
    """Answers by revision and check, from the same PromQL the real run sends."""

    def __init__(self, values: dict[tuple[str, str], float | None], counts: dict[str, float | None]) -> None:
        self.values = values
        self.counts = counts
        self.asked: list[str] = []

    def __call__(self, promql: str) -> float | None:
        self.asked.append(promql)
        rev = CANARY if f'kubetune_io_revision="{CANARY}"' in promql else STABLE
        for q in engines.get("tgi").builtin_queries(NS, "10s"):
            value_q, count_q = q.for_revision(rev)
            if promql == count_q:
                return self.counts.get(rev)
            if promql == value_q:
                return self.values.get((q.name, rev))
        raise AssertionError(f"unexpected query {promql}")


def healthy(**over: float | None) -> dict[tuple[str, str], float | None]:
    base: dict[tuple[str, str], float | None] = {
        ("errorRate", CANARY): 0.0,
        ("errorRate", STABLE): 0.0,
        ("p95Latency", CANARY): 0.010,
        ("p95Latency", STABLE): 0.009,
        ("timePerToken", CANARY): 0.002,
        ("timePerToken", STABLE): 0.002,
        ("queueTime", CANARY): 0.0001,
        ("queueTime", STABLE): 0.0001,
    }
    base.update({(k, CANARY): v for k, v in over.items()})
    return base


def run(s: AnalysisSpec, fake: Any) -> Any:
    """One analysis where the same fake answers built-in and custom (tenant proxy) queries."""
    return observe.analysis_outcome(
        s, namespace=NS, canary=CANARY, stable=STABLE, query=fake, tenant_query=fake
    )


def test_healthy_canary_with_enough_traffic_passes_every_builtin_check() -> None:
    out = run(spec(), FakePrometheus(healthy(), {CANARY: 40.4, STABLE: 160.0}))
    assert out.reachable and out.verdict == "Pass"
    assert {m.name: (m.verdict, m.samples) for m in out.metrics} == {
        "errorRate": ("Pass", 40),
        "p95Latency": ("Pass", 40),
        "timePerToken": ("Pass", 40),
        "queueTime": ("Pass", 40),
    }


def test_canary_error_rate_above_stable_fails_naming_the_check() -> None:
    out = run(spec(), FakePrometheus(healthy(errorRate=0.5), {CANARY: 40, STABLE: 160}))
    assert out.verdict == "Fail"
    assert [m.name for m in out.metrics if m.verdict == "Fail"] == ["errorRate"]
    assert out.message.startswith("Fail: errorRate (increase 0.5000")


def test_slow_canary_fails_the_p95_ratio() -> None:
    out = run(spec(), FakePrometheus(healthy(p95Latency=0.3), {CANARY: 40, STABLE: 160}))
    assert {m.name for m in out.metrics if m.verdict == "Fail"} == {"p95Latency"}


def test_too_few_canary_requests_is_inconclusive() -> None:
    out = run(spec(), FakePrometheus(healthy(), {CANARY: 3.2, STABLE: 160}))
    assert out.reachable and out.verdict == "Inconclusive"
    assert all("3 canary requests < minSamples 20" in m.message for m in out.metrics)


def test_no_series_and_nan_mean_zero_samples_and_inconclusive() -> None:
    nothing = FakePrometheus({k: math.nan for k in healthy()}, {CANARY: None, STABLE: None})
    out = run(spec(minSamples=1), nothing)
    assert out.verdict == "Inconclusive" and {m.samples for m in out.metrics} == {0}


def test_unreachable_prometheus_is_an_unreachable_outcome_not_a_verdict() -> None:
    def down(promql: str) -> float | None:
        raise PrometheusUnreachable("Prometheus at http://127.0.0.1:9 is unreachable: ConnectionError")

    out = run(spec(), down)
    assert not out.reachable and out.verdict == "Inconclusive" and out.metrics == []
    assert "http://127.0.0.1:9" in out.message


def test_disabled_builtin_checks_are_neither_queried_nor_judged() -> None:
    fake = FakePrometheus(healthy(p95Latency=10.0), {CANARY: 40, STABLE: 160})
    out = run(spec(builtin={"maxP95LatencyRatio": None, "maxQueueTimeRatio": None}), fake)
    assert out.verdict == "Pass" and [m.name for m in out.metrics] == ["errorRate", "timePerToken"]
    assert not any("tgi_request_duration_bucket" in q for q in fake.asked)


def test_each_distinct_query_is_sent_once_per_run() -> None:
    fake = FakePrometheus(healthy(), {CANARY: 40, STABLE: 160})
    run(spec(), fake)
    assert len(fake.asked) == len(set(fake.asked)) == 4 * 2 + 1  # values per revision + canary count


def test_custom_metric_gets_placeholders_filled_and_canary_samples() -> None:
    asked: list[str] = []

    def prom(promql: str) -> float | None:
        asked.append(promql)
        return 0.01 if promql.startswith("refusals") else 50.0

    s = spec(
        builtin={
            "maxErrorRateIncrease": None,
            "maxP95LatencyRatio": None,
            "maxTimePerTokenRatio": None,
            "maxQueueTimeRatio": None,
        },
        metrics=[
            {
                "name": "refusals",
                "query": 'refusals{ns="{{namespace}}",rev="{{canary}}",base="{{stable}}"}[{{window}}]',
                "threshold": {"max": 0.05},
            }
        ],
    )
    out = run(s, prom)
    assert out.verdict == "Pass" and out.metrics[0].samples == 50
    assert f'refusals{{ns="{NS}",rev="{CANARY}",base="{STABLE}"}}[10s]' in asked


def test_rejected_custom_query_is_inconclusive_with_prometheus_message() -> None:
    def prom(promql: str) -> float | None:
        if promql.startswith("rate("):
            raise PrometheusQueryError(
                "Prometheus at http://p rejected query 'rate(x)': bad_data: parse error"
            )
        return 0.0 if "failure" in promql else 50.0

    s = spec(metrics=[{"name": "broken", "query": "rate(x)", "threshold": {"max": 1}}])
    out = run(s, prom)
    broken = next(m for m in out.metrics if m.name == "broken")
    assert broken.verdict == "Inconclusive" and "parse error" in broken.message


@pytest.mark.parametrize(
    ("duration", "promql"), [("10s", "10s"), ("1.5m", "90s"), ("1m30s", "90s"), ("1500ms", "1500ms")]
)
def test_windows_are_rewritten_in_a_form_promql_accepts(duration: str, promql: str) -> None:
    assert observe.promql_duration(duration) == promql


def test_window_with_a_decimal_reaches_prometheus_as_whole_seconds() -> None:
    fake = FakePrometheus(healthy(), {CANARY: 40, STABLE: 160})
    observe.analysis_outcome(
        spec(window="1.5m"), namespace=NS, canary=CANARY, stable=STABLE, query=lambda q: fake.asked.append(q)
    )
    assert fake.asked and all("[90s]" in q and "1.5m" not in q for q in fake.asked)


class FakeBuckets:
    """Answers bucket queries: the canary's requests one bucket (x1.5) slower than stable's."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, promql: str) -> dict[str, float]:
        self.asked.append(promql)
        assert promql.startswith("sum by (le) (") and "_bucket{" in promql, promql
        slow = f'kubetune_io_revision="{CANARY}"' in promql
        per_bucket = [0, 10, 60, 20, 10] if slow else [10, 60, 20, 10, 0]
        bounds = ["0.1", "0.15", "0.225", "0.3375", "+Inf"]
        cumulative = [sum(per_bucket[: i + 1]) * (1 if slow else 4) for i in range(len(bounds))]
        return dict(zip(bounds, map(float, cumulative), strict=True))


def test_statistical_judge_asks_both_histograms_and_stable_count_and_explains_the_verdict() -> None:
    fake, buckets = FakePrometheus(healthy(p95Latency=0.3), {CANARY: 100, STABLE: 400}), FakeBuckets()
    out = observe.analysis_outcome(
        spec(judge="statistical", builtin={"maxTimePerTokenRatio": None, "maxQueueTimeRatio": None}),
        namespace=NS,
        canary=CANARY,
        stable=STABLE,
        query=fake,
        buckets_query=buckets,
    )
    p95 = next(m for m in out.metrics if m.name == "p95Latency")
    assert p95.verdict == "Fail" and p95.samples == 100 and p95.stable_samples == 400, p95
    assert p95.effect == 0.3 / 0.009 and p95.p_value is not None and p95.p_value < 0.005
    assert {CANARY, STABLE} == {r for q in buckets.asked for r in (CANARY, STABLE) if f'="{r}"' in q}
    assert all("tgi_request_duration_bucket" in q for q in buckets.asked)
    assert out.verdict == "Fail" and "canary is slower than stable" in out.message


def test_statistical_judge_without_histograms_leaves_latency_inconclusive() -> None:
    fake = FakePrometheus(healthy(p95Latency=0.3), {CANARY: 100, STABLE: 400})
    out = run(spec(judge="statistical"), fake)
    verdicts = {m.name: (m.verdict, m.message) for m in out.metrics}
    assert verdicts["p95Latency"] == ("Inconclusive", "no histogram for canary or stable in the window")
    assert verdicts["errorRate"][0] == "Pass"
