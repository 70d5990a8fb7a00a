"""No endless rollouts: progressDeadline and analysis.maxInconclusive stall a canary, onStalled decides."""

from typing import Any

import pytest
from pydantic import ValidationError

from kubetune.api.v1alpha1.base import set_condition
from kubetune.api.v1alpha1.modeldeployment import Reason, RolloutSpec

from .test_canary_state_machine import BLIND, INCONCLUSIVE, PASS, Driver


def rollout(**kw: Any) -> RolloutSpec:
    base: dict[str, Any] = {
        "steps": [{"setWeight": 20}, {"analysis": {"intervals": 2}}, {"setWeight": 60}],
        "analysis": {"interval": "1m", "window": "1m", "failureLimit": 2},
    }
    base.update(kw)
    return RolloutSpec.model_validate(base)


def test_a_canary_blind_for_the_default_progress_deadline_is_rolled_back() -> None:
    drv = Driver(rollout())
    drv.tick()  # the analysis step begins
    assert drv.status.canary_weight == 20
    for _ in range(29):
        drv.tick(BLIND)
    assert drv.status.phase == "Progressing" and drv.status.canary_weight == 20  # 29m: still held
    drv.tick(BLIND)
    assert drv.status.phase == "RolledBack" and drv.status.canary_weight == 0
    last = drv.events[-1]
    assert last.type == "Warning" and last.reason == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert "progressDeadline is 30m" in last.message


def test_the_deadline_wakes_the_controller_when_it_falls() -> None:
    drv = Driver(rollout(progressDeadline="10m", analysis={"interval": "8m", "window": "8m"}))
    drv.tick()  # the analysis step begins
    d = drv.tick(minutes=5)
    assert d.requeue_after == pytest.approx(300)  # the deadline, 5m away, before the next interval


def test_max_inconclusive_rolls_back_after_that_many_in_a_row() -> None:
    drv = Driver(rollout(analysis={"interval": "1m", "window": "1m", "maxInconclusive": 3}))
    drv.tick()
    drv.tick(INCONCLUSIVE)
    drv.tick(BLIND)  # Prometheus unreachable counts as inconclusive
    assert drv.status.phase == "Progressing"
    drv.tick(INCONCLUSIVE)
    assert drv.status.phase == "RolledBack"
    assert drv.events[-1].reason == Reason.TOO_MANY_INCONCLUSIVE


def test_a_conclusive_analysis_resets_the_inconclusive_count() -> None:
    drv = Driver(rollout(analysis={"interval": "1m", "window": "1m", "maxInconclusive": 2}))
    drv.tick()
    drv.tick(INCONCLUSIVE)
    drv.tick(PASS)
    drv.tick(INCONCLUSIVE)
    assert drv.status.phase == "Progressing"
    assert drv.status.analysis is not None and drv.status.analysis.consecutive_inconclusive == 1


def test_passing_analyses_are_progress_so_a_long_analysis_step_is_not_stalled() -> None:
    drv = Driver(rollout(progressDeadline="3m", steps=[{"setWeight": 20}, {"analysis": {"intervals": 6}}]))
    drv.tick()
    for _ in range(5):
        drv.tick(PASS)
    assert drv.status.phase == "Progressing" and drv.status.current_step == 1
    drv.tick(PASS)
    assert drv.status.phase == "Healthy"


def test_time_in_a_pause_step_does_not_count() -> None:
    drv = Driver(rollout(progressDeadline="5m", steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]))
    drv.tick()
    drv.tick(minutes=60)
    assert drv.status.phase == "Paused"
    drv.tick(promote="true")
    assert drv.status.phase == "Healthy"


def test_canary_pods_that_never_become_ready_hit_the_deadline() -> None:
    drv = Driver(rollout(progressDeadline="10m"))
    drv.tick(ready=False)
    drv.tick(ready=False, minutes=9)
    assert drv.status.phase == "Progressing"
    drv.tick(ready=False, minutes=1)
    assert drv.status.phase == "RolledBack"


def test_on_stalled_hold_keeps_the_weight_warns_once_and_resumes_on_a_pass() -> None:
    drv = Driver(rollout(progressDeadline="5m", onStalled="hold"))
    drv.tick()
    decisions = [drv.tick(BLIND) for _ in range(4)]
    assert all(d.stalled is None for d in decisions)
    d = drv.tick(BLIND)
    assert d.stalled is not None and d.stalled[0] == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert drv.status.phase == "Progressing" and drv.status.canary_weight == 20
    # reconcile turns Decision.stalled into the RolloutStalled condition; the machine reads it back
    drv.status.conditions = set_condition(
        drv.status.conditions, "RolloutStalled", "True", d.stalled[0], d.stalled[1], now=drv.now
    )
    d = drv.tick(BLIND)
    assert d.stalled is not None
    stalled_events = [e for e in drv.events if e.reason == Reason.PROGRESS_DEADLINE_EXCEEDED]
    assert len(stalled_events) == 1 and stalled_events[0].type == "Warning"
    d = drv.tick(PASS)
    assert d.stalled is None and drv.events[-1].reason == Reason.RESUMED
    drv.status.conditions = []
    drv.tick(PASS)
    assert drv.status.canary_weight == 60 or drv.status.phase == "Healthy"


def test_a_null_progress_deadline_holds_as_before() -> None:
    drv = Driver(rollout(progressDeadline=None))
    drv.tick()
    for _ in range(120):
        drv.tick(BLIND)
    assert drv.status.phase == "Progressing" and drv.status.canary_weight == 20


def test_a_progress_deadline_not_longer_than_the_interval_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"progressDeadline \(1m\) must be longer"):
        rollout(progressDeadline="1m")
