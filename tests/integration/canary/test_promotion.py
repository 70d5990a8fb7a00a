"""A healthy canary, judged on real Prometheus data, walks every step to promotion."""

from __future__ import annotations

import re
from collections.abc import Callable

from kubetune.api.v1alpha1.modeldeployment import RolloutSpec
from kubetune.testing.prometheus import Prometheus

from . import harness
from .conftest import Scraped

INTERVAL_S = 2.0


def test_healthy_canary_goes_through_every_step_to_promotion(
    prom: Prometheus, scrape: Callable[[str, str], Scraped]
) -> None:
    target = scrape("healthy", "promote")
    namespace, stable, canary = target.namespace, target.stable, target.canary
    spec = RolloutSpec.model_validate(
        {
            "steps": [
                {"setWeight": 20},
                {"analysis": {"intervals": 2}},
                {"setWeight": 60},
                {"analysis": {}},
                {"setWeight": 100},
            ],
            # The default limits (p95 ratio 1.5): the threshold judge rolled this same-code canary
            # back at a p95 ratio of 1.8 on a loaded machine; the statistical judge sees noise.
            "analysis": {
                "interval": "2s",
                "window": "10s",
                "judge": "statistical",
                "minSamples": 10,
                "failureLimit": 2,
            },
        }
    )
    with harness.Traffic(target.stable_server, target.canary_server, rate=20) as traffic:
        run = harness.run_rollout(
            spec,
            prom=prom,
            traffic=traffic,
            namespace=namespace,
            stable=stable,
            canary_rev=canary,
            deadline_s=40,
        )
    print(run.describe())
    assert run.promoted and run.status.stable_revision == canary, run.describe()
    actions = run.actions()
    assert actions[: actions.index("Promoted") + 1][-1] == "Promoted"
    weights = [h.message for h in run.status.history if h.action == "SetWeight"]
    assert weights == ["canary weight 20%", "canary weight 60%", "canary weight 100%"], run.describe()
    passed = [a for a in run.analyses if a.outcome.verdict == "Pass"]
    assert [a.weight for a in passed] == [20, 20, 60], run.describe()
    for a in passed:  # every check really ran on real numbers with enough canary samples
        assert {m.name for m in a.outcome.metrics} == {"errorRate", "p95Latency", "timePerToken", "queueTime"}
        assert all(
            m.samples >= 10 and m.canary is not None and m.stable is not None for m in a.outcome.metrics
        )
        # ...and explains itself: effect, interval, p-value, both counts, one sentence
        for m in a.outcome.metrics:
            assert m.p_value is not None and m.effect is not None and m.stable_samples, run.describe()
            assert m.message.startswith("no evidence") or " but " in m.message, run.describe()
    assert "AnalysisFailed" not in actions and run.end_counts["canary"].failed == 0
    # As with real TGI, the healthy canary never created a failure series: its error rate of 0
    # is computed from no series at all, not read from series pre-created at 0.
    assert not re.search(r"^tgi_request_failure", target.canary_server.metrics(), re.M)
    assert all(m.canary == 0 for a in passed for m in a.outcome.metrics if m.name == "errorRate")
