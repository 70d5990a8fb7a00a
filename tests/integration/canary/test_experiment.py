"""An A/B experiment on real Prometheus data: a custom success rate decides, and is recorded.

The rollout holds a 50/50 split for 20 s (``experiment``, ``decision: auto``); interval analyses
are an interval of 1 m apart, so none runs meanwhile and the experiment's closing analysis over
its whole duration is the only judgement. Besides the built-in checks it judges a custom ``rate``
metric, the share of requests that succeeded, computed from the series the TGI stand-in really
exports (``tgi_request_success`` over ``tgi_request_count``), asked through the real
prom-label-proxy as the operator asks tenant queries. A healthy canary ends with Pass in
``status.experiment`` and is promoted; one failing half its requests ends with Fail (the success
rate among the failed checks) and is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable

from kubetune.api.v1alpha1.modeldeployment import MetricVerdict, RolloutSpec
from kubetune.testing.prometheus import Prometheus

from . import harness
from .conftest import Scraped

DURATION_S = 20


def grown(metric: str) -> str:
    """How much ``metric`` grew per revision in the window, counting a series born in it from zero.

    ``increase()`` would miss a new pod's first sample (TGI creates its counters on first use);
    this is what a user writes for counters like TGI's: last value minus the one before the window.
    """
    series = f'{metric}{{namespace="{{{{namespace}}}}",kubetune_io_revision="{{{{revision}}}}"}}'
    last = f"last_over_time({series}[{{{{window}}}}])"
    before = f"last_over_time({series}[1h] offset {{{{window}}}})"
    return f"sum({last} - ({before} or {last} * 0))"


def spec() -> RolloutSpec:
    return RolloutSpec.model_validate(
        {
            "steps": [
                {"setWeight": 50},
                {"experiment": {"duration": f"{DURATION_S}s", "decision": "auto"}},
                {"setWeight": 100},
            ],
            "analysis": {
                "interval": "1m",
                "window": "1m",
                "judge": "statistical",
                "minSamples": 10,
                "metrics": [
                    {
                        "name": "success",
                        "rate": {
                            "events": grown("tgi_request_success"),
                            "total": grown("tgi_request_count"),
                            "better": "higher",
                            "maxChange": 0.05,
                        },
                    }
                ],
            },
        }
    )


def run_experiment(
    prom: Prometheus, tenant_proxy: str, target: Scraped
) -> tuple[harness.Rollout, dict[str, harness.Counts]]:
    with harness.Traffic(target.stable_server, target.canary_server, rate=20) as traffic:
        run = harness.run_rollout(
            spec(),
            prom=prom,
            traffic=traffic,
            namespace=target.namespace,
            stable=target.stable,
            canary_rev=target.canary,
            deadline_s=DURATION_S + 20,
            tenant_url=tenant_proxy,
        )
    print(run.describe())
    print(run.status.experiment)
    return run, run.end_counts


def the_closing_analysis(run: harness.Rollout, canary: str) -> list[MetricVerdict]:
    """The experiment's one analysis: no interval analysis ran, its result is status.experiment's."""
    assert [a.closing for a in run.analyses] == [True], run.describe()
    closing = run.analyses[0]
    # status times are whole seconds, so the held time is the duration to within a second
    assert closing.weight == 50 and closing.at >= DURATION_S - 1, run.describe()
    e = run.status.experiment
    assert e is not None and e.revision == canary, run.describe()
    assert e.weight == 50 and e.started_at and e.ended_at, e
    assert e.verdict == closing.outcome.verdict and e.metrics == closing.outcome.metrics, e
    assert {m.name for m in e.metrics} == {"errorRate", "p95Latency", "timePerToken", "queueTime", "success"}
    reasons = [ev.reason for ev in run.events]
    assert "ExperimentStarted" in reasons and "ExperimentDone" in reasons, run.describe()
    return e.metrics


def success_of(metrics: list[MetricVerdict]) -> MetricVerdict:
    return next(m for m in metrics if m.name == "success")


# TGI (and `kubetune serve`) counts a request when it arrives and its success when it ends: the
# requests still in flight at the window's end are counted but not yet successes. The traffic
# (harness.Traffic) keeps at most its 8 workers' requests in flight.
IN_FLIGHT = 8


def all_succeeded(rate: float | None, samples: int | None) -> bool:
    """Every request of the window succeeded, but for those still in flight at its end."""
    return rate is not None and samples is not None and rate >= 1 - IN_FLIGHT / samples


def test_healthy_canary_passes_the_experiment_and_is_promoted(
    prom: Prometheus, tenant_proxy: str, scrape: Callable[[str, str], Scraped]
) -> None:
    target = scrape("healthy", "ab-pass")
    run, counts = run_experiment(prom, tenant_proxy, target)
    assert run.promoted and run.status.stable_revision == target.canary, run.describe()
    metrics = the_closing_analysis(run, target.canary)
    e = run.status.experiment
    assert e is not None and e.verdict == "Pass" and e.decision == "moved on by policy (decision: auto)", e
    success = success_of(metrics)
    # every request succeeded on both sides; the counts are the requests really served in the
    # window (the canary's series were born in it and count from zero)
    assert success.verdict == "Pass", success
    assert all_succeeded(success.canary, success.samples), success
    assert all_succeeded(success.stable, success.stable_samples), success
    assert success.p_value is not None and success.effect is not None, success
    assert abs(success.effect) <= IN_FLIGHT / min(success.samples or 1, success.stable_samples or 1), success
    assert success.effect_low is not None and success.effect_high is not None, success
    assert success.effect_low <= 0 <= success.effect_high, success
    served = counts["canary"].ok
    assert counts["canary"].failed == 0 and 0.7 * served <= success.samples <= served, (success, counts)
    # a 50/50 split: stable served about as many in the same window
    assert success.stable_samples is not None and success.stable_samples >= 0.7 * success.samples, success
    actions = run.actions()
    assert actions[-1] == "Promoted" and "RolledBack" not in actions, run.describe()


def test_canary_failing_half_its_requests_fails_the_experiment_and_is_rolled_back(
    prom: Prometheus, tenant_proxy: str, scrape: Callable[[str, str], Scraped]
) -> None:
    target = scrape("errors", "ab-fail")
    run, counts = run_experiment(prom, tenant_proxy, target)
    assert run.rolled_back and run.status.canary_weight == 0, run.describe()
    metrics = the_closing_analysis(run, target.canary)
    e = run.status.experiment
    assert e is not None and e.verdict == "Fail" and e.decision == "rolled back by policy (decision: auto)", e
    success = success_of(metrics)
    assert success.verdict == "Fail", success
    assert success.canary is not None and 0.3 < success.canary < 0.7, success
    assert all_succeeded(success.stable, success.stable_samples), success
    # worse by far more than maxChange, and the interval says it is not chance
    assert success.effect_high is not None and success.effect_high < -0.05, success
    assert success.p_value is not None and success.p_value < 0.01, success
    served = counts["canary"].ok + counts["canary"].failed
    assert counts["canary"].failed > 0 and 0.7 * served <= success.samples <= served, (success, counts)
    assert next(m for m in metrics if m.name == "errorRate").verdict == "Fail"
    assert counts["stable"].failed == 0
    assert run.actions()[-1] == "RolledBack", run.describe()
    assert "success" in run.status.history[-1].message, run.describe()
