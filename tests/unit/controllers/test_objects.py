"""Status patches null what became unset; kopf's bookkeeping is not ours; server defaults are not
differences."""

from kubetune.controllers import objects
from kubetune.controllers.objects import status_patch, without_kopf


def test_status_patch_nulls_fields_that_became_unset_and_skips_no_change() -> None:
    obj = {"status": {"phase": "Progressing", "canaryRevision": "abc", "kopf": {"progress": {}}}}
    assert status_patch(obj, {"phase": "Healthy"}) == {"status": {"canaryRevision": None, "phase": "Healthy"}}
    assert status_patch(obj, {"phase": "Progressing", "canaryRevision": "abc"}) is None
    assert status_patch({}, {}) == {"status": {}}  # a first status is always written


def test_without_kopf_keeps_only_the_models_fields() -> None:
    obj = {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {},
        "spec": {},
        "status": {"kopf": 1, "phase": "x"},
        "x": 1,
    }
    assert without_kopf(obj) == {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {},
        "spec": {},
        "status": {"phase": "x"},
    }


def test_a_stored_child_with_server_defaults_covers_its_manifest_but_not_a_changed_one() -> None:
    desired = {
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        "rules": [{"backendRefs": [{"name": "bot-stable", "port": 80, "weight": 70}]}],
    }
    stored = {
        "clusterIP": "10.0.0.7",
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": "bot-stable", "port": 80, "weight": 70}
                ],
            }
        ],
    }
    assert objects.covers(stored, desired)
    moved = {**desired, "rules": [{"backendRefs": [{"name": "bot-stable", "port": 80, "weight": 100}]}]}
    assert not objects.covers(stored, moved)  # a new weight
    assert not objects.covers(stored, {**desired, "ports": desired["ports"] * 2})  # a list grew
    assert not objects.covers({"ports": None}, desired)
