"""ModelDeployment triggers: a reconcile that failed on a transient error is retried with
backoff, as for FineTuneJobs (kopf never retries a watching handler)."""

from __future__ import annotations

import threading
from typing import Any

import kopf

from kubetune.clients import kube as kubeclient
from kubetune.controllers import serial
from kubetune.controllers.modeldeployment import handlers


class Flaky:
    """A reconciler whose first passes fail as when the API server is unreachable."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.forgotten: list[tuple[str, str | None]] = []
        self.done = threading.Event()

    def reconcile(self, namespace: str, name: str) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise kubeclient.ApiError(0, "cannot reach the API server")
        self.done.set()

    def forget(self, namespace: str, name: str, uid: str | None = None) -> None:
        self.forgotten.append((name, uid))


def _changed(flaky: Flaky) -> Any:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, flaky, resync_seconds=30)  # type: ignore[arg-type]
    found = [h for h in registry._watching.get_all_handlers() if h.fn.__name__ == "changed"]
    assert len(found) == 1
    return found[0].fn


def test_a_reconcile_failing_on_a_transient_error_is_retried_until_it_succeeds(monkeypatch: Any) -> None:
    monkeypatch.setattr(
        serial.Retry.__init__, "__kwdefaults__", {"first": 0.01, "most": 0.02, "requeue": None}
    )
    flaky = Flaky(failures=2)
    changed = _changed(flaky)
    changed(namespace="ml", name="chat", type="MODIFIED", body=kopf.Body({}))  # raised into kopf before
    assert flaky.done.wait(5)
    assert flaky.calls == 3


def test_a_late_deleted_event_of_an_earlier_object_never_strands_the_new_one(monkeypatch: Any) -> None:
    # kopf handles each uid's events apart: the DELETED event of a ModelDeployment deleted and
    # applied again may come after the new one's first (failed) pass. It cancelled that pass's
    # retry before, and the new object waited for an event that might never come.
    monkeypatch.setattr(
        serial.Retry.__init__, "__kwdefaults__", {"first": 0.05, "most": 0.1, "requeue": None}
    )
    flaky = Flaky(failures=1)
    changed = _changed(flaky)
    changed(namespace="ml", name="chat", type="MODIFIED", body=kopf.Body({"metadata": {"uid": "u-new"}}))
    changed(namespace="ml", name="chat", type="DELETED", body=kopf.Body({"metadata": {"uid": "u-old"}}))
    assert flaky.done.wait(5)
    assert flaky.calls == 2 and flaky.forgotten == [("chat", "u-old")]
