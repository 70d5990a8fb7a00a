"""An A/B experiment step holds the split, records one comparison over its duration, then waits or acts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubetune.api.v1alpha1.modeldeployment import MetricVerdict, ModelDeploymentStatus, RolloutSpec
from kubetune.controllers.modeldeployment import canary
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome, Observed

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PASS = AnalysisOutcome("Pass", [MetricVerdict(name="errorRate", verdict="Pass")], message="Pass")
SUCCESS = MetricVerdict(
    name="taskSuccess",
    verdict="Fail",
    canary=0.7,
    stable=0.8,
    effect=-0.1,
    effect_low=-0.16,
    effect_high=-0.04,
    p_value=0.0001,
    samples=400,
    stable_samples=1600,
    message="canary succeeds less often than stable",
)
WORSE = AnalysisOutcome("Fail", [SUCCESS], message="Fail: taskSuccess")
BETTER = AnalysisOutcome(
    "Pass", [SUCCESS.model_copy(update={"verdict": "Pass", "effect": 0.05})], message="Pass"
)


def spec(decision: str = "manual") -> RolloutSpec:
    return RolloutSpec.model_validate(
        {
            "steps": [
                {"setWeight": 50},
                {"experiment": {"duration": "30m", "decision": decision}},
                {"setWeight": 100},
            ],
            "analysis": {"interval": "5m", "window": "5m"},
            "progressDeadline": "10m",
        }
    )


class Driver:
    """Reconcile ticks like the controller's: interval analyses and the experiment's closing one."""

    def __init__(self, rollout: RolloutSpec) -> None:
        self.spec = rollout
        self.status = ModelDeploymentStatus(phase="Healthy", stable_revision="aaa")
        self.now = T0
        self.windows: list[str] = []
        self.events: list[canary.Event] = []

    def tick(self, closing: AnalysisOutcome = PASS, *, minutes: float = 5, **obs: Any) -> None:
        self.now += timedelta(minutes=minutes)
        due = canary.analysis_due(self.spec, self.status, self.now)
        window = canary.experiment_due(self.spec, self.status, self.now)
        if window is not None:
            self.windows.append(window)
        observed = Observed(desired_revision="bbb", canary_ready=True, **obs)
        decision = canary.advance(
            self.spec,
            self.status,
            observed,
            self.now,
            PASS if due else None,
            experiment=closing if window is not None else None,
        )
        self.status = decision.status
        self.events += decision.events


def test_the_split_is_held_for_the_duration_then_one_comparison_over_all_of_it_is_recorded() -> None:
    d = Driver(spec())
    d.tick()  # canary at 50%, experiment starts
    assert d.status.current_step == 1 and d.status.canary_weight == 50 and d.status.experiment is not None
    for _ in range(5):  # 25 minutes: not yet, and never stalled by the 10m progress deadline
        d.tick(WORSE)
        assert d.status.experiment.verdict is None and d.status.phase == "Progressing"
    d.tick(WORSE)  # 30 minutes
    assert d.windows == ["30m"]
    e = d.status.experiment
    assert e.verdict == "Fail" and e.weight == 50 and e.metrics[0].effect == -0.1
    assert d.status.phase == "Paused" and d.status.canary_weight == 50
    assert "waiting for kubetune.io/promote" in e.decision
    done = [ev for ev in d.events if ev.reason == "ExperimentDone"]
    assert (
        len(done) == 1
        and done[0].type == "Warning"
        and "taskSuccess -0.1 [-0.16, -0.04] p=0.0001" in done[0].message
    )


def test_a_person_promotes_the_recorded_result() -> None:
    d = Driver(spec())
    for _ in range(7):
        d.tick(BETTER)
    assert d.status.phase == "Paused" and d.status.experiment.verdict == "Pass"
    d.tick(promote="true")
    assert d.status.phase == "Healthy" and d.status.stable_revision == "bbb"
    assert d.status.experiment.decision == "moved on by kubetune.io/promote"
    assert d.windows == ["30m"]  # the result was not measured twice


def test_policy_decides_pass_moves_on_and_fail_rolls_back() -> None:
    good = Driver(spec("auto"))
    for _ in range(7):
        good.tick(BETTER)
    assert good.status.phase == "Healthy" and good.status.stable_revision == "bbb"
    bad = Driver(spec("auto"))
    for _ in range(7):
        bad.tick(WORSE)
    assert bad.status.phase == "RolledBack" and bad.status.canary_weight == 0
    assert bad.status.experiment.decision == "rolled back by policy (decision: auto)"
    assert "taskSuccess" in bad.status.history[-1].message


def test_without_prometheus_the_result_waits_and_is_retried() -> None:
    d = Driver(spec("auto"))
    blind = AnalysisOutcome("Inconclusive", reachable=False, message="connection refused")
    for _ in range(7):
        d.tick(blind)
    assert d.status.experiment.verdict is None and d.status.phase == "Progressing"
    d.tick(BETTER)
    assert d.status.phase == "Healthy"
    assert d.windows == ["30m"] * 2
