"""The first analysis of a canary waits one interval: at once, it would see no canary traffic."""

from datetime import UTC, datetime, timedelta

from kubetune.api.v1alpha1.modeldeployment import ModelDeploymentStatus, RolloutSpec
from kubetune.controllers.modeldeployment import canary
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome, Observed

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = RolloutSpec.model_validate(
    {
        "steps": [{"setWeight": 20}, {"analysis": {}}],
        "analysis": {"interval": "30s", "window": "1m", "onInconclusive": "rollback"},
    }
)


def started() -> ModelDeploymentStatus:
    status = ModelDeploymentStatus(phase="Healthy", stable_revision="aaa")
    return canary.advance(SPEC, status, Observed("bbb", canary_ready=True), T0).status


def test_no_analysis_is_due_right_after_the_canary_starts_taking_traffic() -> None:
    status = started()
    assert status.canary_weight == 20
    assert not canary.analysis_due(SPEC, status, T0 + timedelta(seconds=1))
    assert canary.analysis_due(SPEC, status, T0 + timedelta(seconds=30))


def test_a_reconcile_soon_after_start_cannot_roll_back_on_an_empty_window() -> None:
    status = started()
    now = T0 + timedelta(seconds=1)
    empty = AnalysisOutcome("Inconclusive")
    outcome = empty if canary.analysis_due(SPEC, status, now) else None
    decision = canary.advance(SPEC, status, Observed("bbb", canary_ready=True), now, outcome)
    assert decision.status.phase == "Progressing" and decision.status.canary_weight == 20


def test_a_status_without_step_start_time_is_analysed_at_once() -> None:
    status = started().model_copy(update={"step_started_at": None})
    assert canary.analysis_due(SPEC, status, T0)
