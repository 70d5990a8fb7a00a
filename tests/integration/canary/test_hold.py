"""Without enough data, or without Prometheus, the rollout holds: it never promotes blind."""

from __future__ import annotations

from collections.abc import Callable

from kubetune.api.v1alpha1.modeldeployment import RolloutSpec
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.servers import Server

from . import harness
from .conftest import Scraped

STEPS = [{"setWeight": 20}, {"analysis": {"intervals": 2}}, {"setWeight": 100}]


def test_too_little_canary_traffic_is_inconclusive_and_holds(
    prom: Prometheus, scrape: Callable[[str, str], Scraped]
) -> None:
    target = scrape("healthy", "quiet")
    # 3 requests/s, 20% to the canary: about 6 canary requests per 10 s window, below minSamples 20
    spec = RolloutSpec.model_validate(
        {
            "steps": STEPS,
            "analysis": {
                "interval": "2s",
                "window": "10s",
                "judge": "statistical",
                "minSamples": 20,
            },
        }
    )
    with harness.Traffic(target.stable_server, target.canary_server, rate=3) as traffic:
        run = harness.run_rollout(
            spec,
            prom=prom,
            traffic=traffic,
            namespace=target.namespace,
            stable=target.stable,
            canary_rev=target.canary,
            deadline_s=30,
            on_tick=lambda r: len(r.analyses) >= 5,
        )
    print(run.describe())
    assert len(run.analyses) >= 5, run.describe()
    assert not run.promoted and not run.rolled_back, run.describe()
    assert (
        run.status.phase == "Progressing" and run.status.canary_weight == 20 and run.status.current_step == 1
    )
    assert {a.outcome.verdict for a in run.analyses} == {"Inconclusive"}
    last = run.analyses[-1].outcome.metrics
    assert all("< minSamples 20" in m.message and 0 < m.samples < 20 for m in last), run.describe()
    assert run.end_counts["canary"].ok > 0  # the canary did get (too little) traffic


def test_prometheus_down_mid_rollout_holds_and_the_rollout_resumes_when_it_is_back(
    own_prometheus: Prometheus, stable_server: Server, new_canary: Callable[[str], Server]
) -> None:
    prom = own_prometheus
    canary_server = new_canary("healthy")
    namespace, stable, canary = "outage", "stable-outage", "canary-outage"
    prom.set_targets(
        harness.label(stable_server, namespace, stable) | harness.label(canary_server, namespace, canary)
    )
    prom.wait_scraped(namespace, 2)
    spec = RolloutSpec.model_validate(
        {
            "steps": STEPS,
            "analysis": {
                "interval": "2s",
                "window": "10s",
                "judge": "statistical",
                "minSamples": 10,
            },
        }
    )
    seen: dict[str, int] = {}

    def chaos(run: harness.Rollout) -> bool:
        outcomes = [a.outcome for a in run.analyses]
        if "down" not in seen and any(o.verdict == "Pass" for o in outcomes):
            prom.stop()  # one Pass of the two needed: stop Prometheus mid-analysis-step
            seen["down"] = len(outcomes)
        elif "up" not in seen and "down" in seen and sum(not o.reachable for o in outcomes) >= 3:
            seen["step_while_down"] = run.status.current_step or -1
            prom.start()
            seen["up"] = len(outcomes)
        return False

    with harness.Traffic(stable_server, canary_server, rate=20) as traffic:
        run = harness.run_rollout(
            spec,
            prom=prom,
            traffic=traffic,
            namespace=namespace,
            stable=stable,
            canary_rev=canary,
            deadline_s=60,
            on_tick=chaos,
        )
    print(run.describe())
    assert "up" in seen, run.describe()
    blind = run.analyses[seen["down"] : seen["up"]]
    assert len(blind) >= 3 and all(not a.outcome.reachable for a in blind), run.describe()
    assert all(prom.url in a.outcome.message for a in blind)
    assert seen["step_while_down"] == 1  # held at the analysis step, weight unchanged
    assert all(a.weight == 20 for a in blind)
    holds = [e for e in run.events if e.reason == "PrometheusUnreachable"]
    assert len(holds) == len(blind)
    # promoted only after Prometheus came back, on a Pass it computed
    assert run.promoted, run.describe()
    assert run.analyses[-1].outcome.verdict == "Pass" and run.analyses[-1].outcome.reachable
