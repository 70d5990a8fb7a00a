"""Conditions behave like metav1.Condition: one per type, transition time moves only on change."""

from datetime import UTC, datetime, timedelta

from kubetune.api.v1alpha1.base import get_condition, is_true, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_new_condition_is_added_with_transition_time() -> None:
    conds = set_condition([], "Ready", "False", "Pending", "waiting", now=T0, generation=1)
    (c,) = conds
    assert (c.type, c.status, c.reason, c.observed_generation) == ("Ready", "False", "Pending", 1)
    assert c.last_transition_time == "2026-01-01T00:00:00Z"


def test_same_status_keeps_transition_time_but_updates_message() -> None:
    conds = set_condition([], "Ready", "False", "Pending", "a", now=T0)
    conds = set_condition(conds, "Ready", "False", "StillPending", "b", now=T0 + timedelta(minutes=5))
    c = get_condition(conds, "Ready")
    assert c is not None and c.message == "b" and c.reason == "StillPending"
    assert c.last_transition_time == "2026-01-01T00:00:00Z"


def test_status_change_moves_transition_time_and_keeps_other_types() -> None:
    conds = set_condition([], "Ready", "False", "Pending", "", now=T0)
    conds = set_condition(conds, "Stalled", "False", "Progressing", "", now=T0)
    conds = set_condition(conds, "Ready", "True", "Done", "", now=T0 + timedelta(hours=1))
    assert [c.type for c in conds] == ["Ready", "Stalled"]
    assert is_true(conds, "Ready") and not is_true(conds, "Stalled") and not is_true(conds, "Missing")
    ready = get_condition(conds, "Ready")
    assert ready is not None and ready.last_transition_time == "2026-01-01T01:00:00Z"


def test_conditions_serialize_in_camel_case() -> None:
    (c,) = set_condition([], "Ready", "True", "Done", "ok", now=T0, generation=3)
    assert c.to_wire() == {
        "type": "Ready",
        "status": "True",
        "observedGeneration": 3,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "reason": "Done",
        "message": "ok",
    }
