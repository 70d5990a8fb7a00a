"""Custom rate metrics (task success, thumbs-up, refusals) are compared canary against stable."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec
from kubetune.controllers.modeldeployment import observe

NS, CANARY, STABLE = "team-a", "c0ffee", "5ab1e"
EVENTS = 'sum(increase(app_tasks_total{kubetune_io_revision="{{revision}}",ok="true"}[{{window}}]))'
TOTAL = 'sum(increase(app_tasks_total{kubetune_io_revision="{{revision}}"}[{{window}}]))'


def spec(judge: str = "threshold", **rate: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "interval": "1m",
            "window": "5m",
            "minSamples": 50,
            "judge": judge,
            "builtin": {
                "maxErrorRateIncrease": None,
                "maxP95LatencyRatio": None,
                "maxTimePerTokenRatio": None,
                "maxQueueTimeRatio": None,
            },
            "metrics": [{"name": "taskSuccess", "rate": {"events": EVENTS, "total": TOTAL, **rate}}],
        }
    )


class Tenant:
    """The tenant proxy's answers: events and totals per revision."""

    def __init__(self, counts: dict[tuple[str, str], float | None]) -> None:
        self.counts = counts
        self.asked: list[str] = []

    def __call__(self, promql: str) -> float | None:
        self.asked.append(promql)
        rev = CANARY if f'"{CANARY}"' in promql else STABLE
        assert "{{" not in promql and "[300s]" in promql, promql
        return self.counts[("events" if 'ok="true"' in promql else "total", rev)]


def run(s: AnalysisSpec, tenant: Tenant) -> Any:
    def builtin(promql: str) -> float | None:
        return 400.0  # canary request count: the built-in checks are off

    return observe.analysis_outcome(
        s, namespace=NS, canary=CANARY, stable=STABLE, query=builtin, tenant_query=tenant
    )


def test_a_10_point_drop_in_task_success_fails_with_its_interval_and_p_value() -> None:
    tenant = Tenant(
        {("events", CANARY): 280, ("total", CANARY): 400, ("events", STABLE): 1280, ("total", STABLE): 1600}
    )
    out = run(spec(), tenant)
    v = out.metrics[0]
    assert (v.name, v.verdict) == ("taskSuccess", "Fail"), v
    assert v.canary == 0.7 and v.stable == 0.8 and v.samples == 400 and v.stable_samples == 1600
    assert v.effect == pytest.approx(-0.1) and v.effect_high is not None and v.effect_high < 0
    assert v.p_value is not None and v.p_value < 0.01
    assert v.message.startswith("canary succeeds less often than stable: -0.1000")
    assert len(tenant.asked) == 4  # events and total, for each revision


def test_the_same_success_rate_passes_and_a_lower_rate_that_is_better_passes_too() -> None:
    same = Tenant(
        {("events", CANARY): 320, ("total", CANARY): 400, ("events", STABLE): 1280, ("total", STABLE): 1600}
    )
    assert run(spec(), same).metrics[0].verdict == "Pass"
    refusals = Tenant(
        {("events", CANARY): 8, ("total", CANARY): 400, ("events", STABLE): 160, ("total", STABLE): 1600}
    )
    v = run(spec(better="lower"), refusals).metrics[0]  # refusals fell from 10% to 2%: good
    assert v.verdict == "Pass" and v.message.startswith("no evidence")


def test_too_few_trials_or_no_tenant_proxy_is_inconclusive() -> None:
    few = Tenant(
        {("events", CANARY): 10, ("total", CANARY): 12, ("events", STABLE): 1280, ("total", STABLE): 1600}
    )
    assert "12 canary requests < minSamples 50" in run(spec(), few).metrics[0].message
    out = observe.analysis_outcome(
        spec(), namespace=NS, canary=CANARY, stable=STABLE, query=lambda q: 400.0, custom_problem="no proxy"
    )
    assert (out.metrics[0].verdict, out.metrics[0].message) == ("Inconclusive", "no proxy")


def test_rate_metrics_share_the_confidence_with_the_statistical_builtin_checks() -> None:
    s = spec("statistical")
    s = s.model_copy(update={"builtin": AnalysisSpec().builtin})
    tenant = Tenant(
        {("events", CANARY): 320, ("total", CANARY): 400, ("events", STABLE): 1280, ("total", STABLE): 1600}
    )
    out = run(s, tenant)
    rate = next(m for m in out.metrics if m.name == "taskSuccess")
    assert "p < 0.002" in (rate.threshold or "")  # 0.01 over 4 built-in checks and this one


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            {"query": "x", "rate": {"events": "a", "total": "b"}, "threshold": {"max": 1}},
            "exactly one of query",
        ),
        ({"query": "x"}, "query needs a threshold"),
        ({"rate": {"events": "a", "total": "b"}, "threshold": {"max": 1}}, "query needs a threshold"),
        ({}, "exactly one of query"),
    ],
)
def test_a_custom_metric_is_a_query_with_a_threshold_or_a_rate(metric: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        AnalysisSpec.model_validate({"metrics": [{"name": "m", **metric}]})
    assert "spec.rollout.analysis.metrics[m]" in str(err.value)
