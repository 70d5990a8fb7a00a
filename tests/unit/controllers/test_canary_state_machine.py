"""The canary state machine walks steps, rolls back on failures, holds when blind."""

from datetime import UTC, datetime, timedelta
from typing import Any

from kubetune.api.v1alpha1.modeldeployment import MetricVerdict, ModelDeploymentStatus, RolloutSpec
from kubetune.controllers.modeldeployment import canary
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome, Observed

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rollout(**kw: Any) -> RolloutSpec:
    base: dict[str, Any] = {
        "steps": [
            {"setWeight": 20},
            {"analysis": {"intervals": 2}},
            {"setWeight": 60},
            {"pause": {"duration": "2m"}},
        ],
        "analysis": {"interval": "1m", "window": "1m", "failureLimit": 2},
    }
    base.update(kw)
    return RolloutSpec.model_validate(base)


def stable_status() -> ModelDeploymentStatus:
    return ModelDeploymentStatus(phase="Healthy", stable_revision="aaa")


PASS = AnalysisOutcome("Pass", [MetricVerdict(name="errorRate", verdict="Pass")])
FAIL = AnalysisOutcome("Fail", [MetricVerdict(name="errorRate", verdict="Fail", message="increase 0.3")])
INCONCLUSIVE = AnalysisOutcome(
    "Inconclusive", [MetricVerdict(name="errorRate", verdict="Inconclusive", message="3 < 50")]
)
BLIND = AnalysisOutcome("Inconclusive", reachable=False, message="connection refused")


class Driver:
    """Runs reconcile ticks like the controller would, a minute apart."""

    def __init__(self, spec: RolloutSpec, status: ModelDeploymentStatus | None = None) -> None:
        self.spec = spec
        self.status = status or stable_status()
        self.now = T0
        self.events: list[canary.Event] = []

    def tick(
        self, outcome: AnalysisOutcome | None = None, *, ready: bool = True, minutes: float = 1, **obs: Any
    ) -> canary.Decision:
        self.now += timedelta(minutes=minutes)
        due = canary.analysis_due(self.spec, self.status, self.now)
        observed = Observed(desired_revision=obs.pop("desired", "bbb"), canary_ready=ready, **obs)
        decision = canary.advance(self.spec, self.status, observed, self.now, outcome if due else None)
        self.status = decision.status
        self.events += decision.events
        return decision


def test_first_revision_becomes_stable_without_a_canary() -> None:
    d = canary.advance(rollout(), ModelDeploymentStatus(), Observed("aaa"), T0)
    assert (
        d.status.stable_revision == "aaa" and d.status.canary_revision is None and d.status.phase == "Healthy"
    )


def test_healthy_canary_walks_every_step_to_promotion() -> None:
    drv = Driver(rollout())
    drv.tick()
    assert (drv.status.canary_revision, drv.status.canary_weight, drv.status.current_step) == ("bbb", 20, 1)
    drv.tick(PASS)
    assert (
        drv.status.current_step == 1 and drv.status.analysis is not None and drv.status.analysis.passes == 1
    )
    drv.tick(PASS)
    assert drv.status.canary_weight == 60 and drv.status.current_step == 3 and drv.status.phase == "Paused"
    drv.tick(PASS)
    assert drv.status.phase == "Paused"
    drv.tick(PASS, minutes=1.5)
    assert drv.status.phase == "Healthy"
    assert (
        drv.status.stable_revision == "bbb"
        and drv.status.canary_revision is None
        and drv.status.canary_weight == 0
    )
    actions = [h.action for h in drv.status.history]
    assert actions[0] == "CanaryStarted" and actions[-1] == "Promoted" and "SetWeight" in actions


def test_failures_roll_back_within_failure_limit_and_keep_stable() -> None:
    drv = Driver(rollout())
    drv.tick()
    drv.tick(FAIL)
    assert (
        drv.status.phase == "Progressing"
        and drv.status.analysis is not None
        and drv.status.analysis.failures == 1
    )
    drv.tick(FAIL)
    assert drv.status.phase == "RolledBack" and drv.status.canary_weight == 0
    assert drv.status.stable_revision == "aaa"
    assert any(
        e.reason == "AnalysisFailed" and e.type == "Warning" and "errorRate" in e.message for e in drv.events
    )
    # the same revision is not retried while the spec still asks for it
    drv.tick(PASS)
    assert drv.status.phase == "RolledBack" and drv.status.canary_weight == 0


def test_inconclusive_holds_and_never_advances() -> None:
    drv = Driver(rollout())
    drv.tick()
    for _ in range(5):
        drv.tick(INCONCLUSIVE)
    assert drv.status.current_step == 1 and drv.status.phase == "Progressing"
    assert (
        drv.status.analysis is not None
        and drv.status.analysis.inconclusive == 5
        and drv.status.analysis.failures == 0
    )


def test_prometheus_unreachable_never_promotes_even_with_on_inconclusive_promote() -> None:
    spec = rollout(analysis={"interval": "1m", "window": "1m", "onInconclusive": "promote"})
    drv = Driver(spec)
    drv.tick()
    for _ in range(4):
        drv.tick(BLIND)
    assert drv.status.current_step == 1 and drv.status.stable_revision == "aaa"
    assert any(e.reason == "PrometheusUnreachable" for e in drv.events)


def test_on_inconclusive_rollback() -> None:
    drv = Driver(rollout(analysis={"interval": "1m", "window": "1m", "onInconclusive": "rollback"}))
    drv.tick()
    drv.tick(INCONCLUSIVE)
    assert drv.status.phase == "RolledBack"


def test_abort_and_full_promote_annotations() -> None:
    drv = Driver(rollout())
    drv.tick()
    d = drv.tick(abort=True)
    assert drv.status.phase == "RolledBack" and "kubetune.io/abort" in d.clear_annotations
    drv2 = Driver(rollout())
    drv2.tick()
    d = drv2.tick(promote="full")
    assert drv2.status.stable_revision == "bbb" and drv2.status.phase == "Healthy"
    assert d.clear_annotations == ["kubetune.io/promote"]


def test_promote_true_skips_an_indefinite_pause() -> None:
    drv = Driver(rollout(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]))
    drv.tick()
    assert drv.status.phase == "Paused" and drv.status.current_step == 1
    drv.tick(minutes=60)
    assert drv.status.phase == "Paused" and drv.status.current_step == 1
    drv.tick(promote="true")
    assert drv.status.canary_weight == 50 and drv.status.current_step == 3


def test_weight_waits_for_ready_canary_pods() -> None:
    drv = Driver(rollout())
    d = drv.tick(ready=False)
    assert drv.status.canary_weight == 20 and drv.status.current_step == 0 and d.requeue_after == 5


def test_canary_pods_that_cannot_start_roll_back() -> None:
    drv = Driver(rollout())
    drv.tick(ready=False)
    drv.tick(ready=False, canary_failed="startup probe: answer equals the base model's")
    assert drv.status.phase == "RolledBack"


def test_new_revision_replaces_an_unfinished_canary() -> None:
    drv = Driver(rollout())
    drv.tick()
    drv.tick(FAIL)
    drv.tick(desired="ccc")
    assert (
        drv.status.canary_revision == "ccc"
        and drv.status.analysis is not None
        and drv.status.analysis.failures == 0
    )


def test_analysis_is_due_only_while_canary_takes_traffic_and_interval_elapsed() -> None:
    spec = rollout()
    status = stable_status()
    assert not canary.analysis_due(spec, status, T0)
    status = status.model_copy(
        update={"canary_revision": "bbb", "canary_weight": 20, "phase": "Progressing", "current_step": 1}
    )
    assert canary.analysis_due(spec, status, T0)
    drv = Driver(spec, status)
    drv.tick(PASS, minutes=0)
    assert not canary.analysis_due(spec, drv.status, drv.now + timedelta(seconds=30))
    assert canary.analysis_due(spec, drv.status, drv.now + timedelta(seconds=60))


def test_a_higher_weight_waits_until_the_canary_pods_for_it_are_ready() -> None:
    drv = Driver(rollout(steps=[{"setWeight": 20}, {"setWeight": 60}]))
    d = drv.tick(ready_weight=20)
    assert drv.status.canary_weight == 60 and drv.status.current_step == 1 and d.requeue_after == 5
    drv.tick(ready_weight=60)
    assert drv.status.phase == "Healthy" and drv.status.stable_revision == "bbb"
