"""The reconciler closes an A/B experiment with one analysis over its whole duration."""

from __future__ import annotations

from kubetune.controllers.modeldeployment.reconcile import Reconciler
from kubetune.controllers.settings import Settings

from .test_modeldeployment_reconcile import REF1, REF2, World, adapter, mdep


class AskedPrometheus:
    """A Prometheus client stand-in: healthy numbers for both revisions, every query recorded."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def query(self, promql: str, at: float | None = None, params: dict[str, str] | None = None) -> float:
        self.asked.append(promql)
        return 0.0 if "failure" in promql else 100.0

    def query_by(
        self, promql: str, label: str, at: float | None = None, params: dict[str, str] | None = None
    ) -> dict[str, float]:
        self.asked.append(promql)
        return {"0.1": 50.0, "0.2": 90.0, "+Inf": 100.0}


def test_an_experiment_is_closed_by_one_analysis_over_its_whole_duration_and_recorded() -> None:
    prom = AskedPrometheus()
    w = World()
    w.rec = Reconciler(
        w.kube,  # type: ignore[arg-type]
        Settings(prometheus_url="http://prometheus:9090"),
        clock=lambda: w.now,
        prometheus_client=lambda url: prom,  # type: ignore[arg-type,return-value]
    )
    w.kube.create(adapter("bot-v1", REF1))
    w.kube.create(adapter("bot-v2", REF2))
    rollout = {
        "steps": [
            {"setWeight": 50},
            {"experiment": {"duration": "10m", "decision": "auto"}},
            {"setWeight": 100},
        ],
        "analysis": {"interval": "1m", "window": "1m", "minSamples": 10, "judge": "statistical"},
    }
    w.kube.create(mdep(adapters=[{"name": "bot", "adapter": "bot-v1"}], rollout=rollout))
    w.pass_()
    w.make_available()
    w.pass_()
    w.point_at("bot-v2")
    w.pass_()
    for _ in range(12):
        w.make_available()
        w.pass_(60)
        if w.status.get("experiment", {}).get("verdict"):
            break
    experiment = w.status["experiment"]
    assert experiment["verdict"] == "Pass" and experiment["weight"] == 50, experiment
    assert {m["name"] for m in experiment["metrics"]} == {
        "errorRate",
        "p95Latency",
        "timePerToken",
        "queueTime",
    }
    assert all(m["pValue"] is not None and m["stableSamples"] == 100 for m in experiment["metrics"])
    assert any("[600s]" in q for q in prom.asked) and any("[60s]" in q for q in prom.asked)
    assert experiment["decision"] == "moved on by policy (decision: auto)"
    assert any(e[1] == "ExperimentDone" for e in w.kube.events)
