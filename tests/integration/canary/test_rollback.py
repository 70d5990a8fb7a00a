"""A bad canary is rolled back within failureLimit analyses, and stable traffic never notices."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from kubetune.api.v1alpha1.modeldeployment import RolloutSpec
from kubetune.testing.prometheus import Prometheus

from . import harness
from .conftest import Scraped

FAILURE_LIMIT = 2


JUDGES = pytest.mark.parametrize("judge", ["threshold", "statistical"])


def spec(judge: str, **builtin: Any) -> RolloutSpec:
    return RolloutSpec.model_validate(
        {
            "steps": [{"setWeight": 50}, {"analysis": {"intervals": 3}}, {"setWeight": 100}],
            "analysis": {
                "judge": judge,
                "interval": "2s",
                "window": "10s",
                "minSamples": 10,
                "failureLimit": FAILURE_LIMIT,
                "builtin": builtin,
            },
        }
    )


def failed_checks(run: harness.Rollout) -> set[str]:
    return {m.name for a in run.analyses for m in a.outcome.metrics if m.verdict == "Fail"}


def assert_rolled_back_within_failure_limit(run: harness.Rollout) -> None:
    assert run.rolled_back and run.status.canary_weight == 0, run.describe()
    assert run.status.stable_revision != run.status.canary_revision, run.describe()
    verdicts = [a.outcome.verdict for a in run.analyses]
    # every analysis with enough canary samples failed; the last one triggered the rollback
    assert verdicts.count("Fail") == FAILURE_LIMIT and verdicts[-1] == "Fail", run.describe()
    assert "Pass" not in verdicts, run.describe()
    assert run.actions()[-1] == "RolledBack"


@JUDGES
def test_canary_failing_half_its_requests_is_rolled_back_while_stable_keeps_answering(
    prom: Prometheus, scrape: Callable[[str, str], Scraped], judge: str
) -> None:
    target = scrape("errors", "errors")
    namespace, stable, canary = target.namespace, target.stable, target.canary
    with harness.Traffic(target.stable_server, target.canary_server, rate=20) as traffic:
        run = harness.run_rollout(
            spec(judge),
            prom=prom,
            traffic=traffic,
            namespace=namespace,
            stable=stable,
            canary_rev=canary,
            deadline_s=30,
        )
        time.sleep(2)  # traffic goes on at weight 0: all of it to stable
        after = traffic.snapshot()
    print(run.describe())
    assert_rolled_back_within_failure_limit(run)
    assert "errorRate" in failed_checks(run)
    assert run.end_counts["canary"].failed > 0  # the canary really failed requests
    assert run.end_counts["stable"].failed == 0 and after["stable"].failed == 0
    assert after["stable"].ok > run.end_counts["stable"].ok  # stable answered after the rollback too
    sent_to_canary = after["canary"].ok + after["canary"].failed
    assert sent_to_canary <= run.end_counts["canary"].ok + run.end_counts["canary"].failed + 8  # in flight


@JUDGES
def test_slow_canary_is_rolled_back_by_the_p95_latency_ratio(
    prom: Prometheus, scrape: Callable[[str, str], Scraped], judge: str
) -> None:
    target = scrape("slow", "slow")
    namespace, stable, canary = target.namespace, target.stable, target.canary
    # only the p95 ratio can fail this canary: the other latency checks are off
    only_p95 = spec(judge, maxTimePerTokenRatio=None, maxQueueTimeRatio=None)
    with harness.Traffic(target.stable_server, target.canary_server, rate=20) as traffic:
        run = harness.run_rollout(
            only_p95,
            prom=prom,
            traffic=traffic,
            namespace=namespace,
            stable=stable,
            canary_rev=canary,
            deadline_s=30,
        )
    print(run.describe())
    assert_rolled_back_within_failure_limit(run)
    assert failed_checks(run) == {"p95Latency"}
    assert run.end_counts["canary"].failed == 0 and run.end_counts["stable"].failed == 0
