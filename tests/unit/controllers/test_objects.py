"""Status patches null what became unset; kopf's bookkeeping is not ours."""

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
