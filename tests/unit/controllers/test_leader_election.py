"""Leader election: a paused leader stops leading before another replica can take the Lease.

Two :class:`LeaseElection` instances share one in-memory Lease (optimistic concurrency by
resourceVersion, as the API server does). The timings are client-go's 15 s / 10 s / 2 s
scaled down; the leader is "paused" by making its Lease calls hang, as a SIGSTOPped or
partitioned process would, while the other keeps trying.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest

from kubetune.clients import kube as kubeclient
from kubetune.controllers.operator import LeaseElection

Obj = dict[str, Any]
DURATION, RENEW_DEADLINE, RETRY = 1.5, 1.0, 0.2


class LeaseStore:
    """One Lease; a patch carrying a stale resourceVersion gets 409."""

    def __init__(self) -> None:
        self.lease: Obj | None = None
        self.version = 0
        self.lock = threading.Lock()

    def get(self, url: str) -> Obj | None:
        with self.lock:
            return copy.deepcopy(self.lease)

    def create(self, obj: Obj) -> Obj | None:
        with self.lock:
            if self.lease is not None:
                return None
            self.version += 1
            self.lease = copy.deepcopy(obj)
            self.lease["metadata"]["resourceVersion"] = str(self.version)
            return copy.deepcopy(self.lease)

    def patch(self, url: str, body: Obj) -> Obj | None:
        with self.lock:
            assert self.lease is not None
            if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
                raise kubeclient.ApiError(409, "the object has been modified")
            self.version += 1
            self.lease["spec"].update(body["spec"])
            self.lease["metadata"]["resourceVersion"] = str(self.version)
            return copy.deepcopy(self.lease)


class Pausable:
    """A replica's view of the store; while paused, its calls hang until resumed."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store
        self.running = threading.Event()
        self.running.set()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.store, name)

        def hanging(*args: Any, **kw: Any) -> Any:
            self.running.wait()
            return call(*args, **kw)

        return hanging


def election(kube: Pausable, identity: str) -> LeaseElection:
    return LeaseElection(
        kube,  # type: ignore[arg-type]
        "kubetune",
        "kubetune-operator",
        identity,
        duration=DURATION,
        renew_deadline=RENEW_DEADLINE,
        retry_period=RETRY,
    )


def test_a_paused_leader_stops_leading_before_another_replica_takes_over() -> None:
    store = LeaseStore()
    kube_a, kube_b = Pausable(store), Pausable(store)
    a, b = election(kube_a, "a"), election(kube_b, "b")
    stop = threading.Event()
    assert a.acquire(stop)
    a.start()
    b_leads = threading.Event()

    def candidate() -> None:
        if b.acquire(stop):
            b_leads.set()

    threading.Thread(target=candidate, daemon=True).start()
    time.sleep(2 * RETRY)
    assert not b_leads.is_set() and a.leading()

    kube_a.running.clear()  # pause the leader: its renewals hang from now on
    paused = time.monotonic()
    a_stopped_at = b_led_at = None
    try:
        while time.monotonic() - paused < DURATION + 2:
            a_leads = not a.lost.is_set()  # the operator runs until lost is set
            assert not (a_leads and b_leads.is_set()), "two replicas lead at once"
            if a_stopped_at is None and a.lost.is_set():
                a_stopped_at = time.monotonic() - paused
            if b_led_at is None and b_leads.is_set():
                b_led_at = time.monotonic() - paused
            time.sleep(0.01)
    finally:
        stop.set()
        kube_a.running.set()
        a.release()
        b.release()
    assert a_stopped_at is not None and a_stopped_at < RENEW_DEADLINE + RETRY
    assert b_led_at is not None and a_stopped_at < b_led_at
    assert store.lease is not None and store.lease["spec"]["holderIdentity"] == "b"


def test_a_leader_whose_renewals_fail_stops_at_the_renew_deadline() -> None:
    class Refusing(Pausable):
        def __getattr__(self, name: str) -> Any:
            def refused(*args: Any, **kw: Any) -> Any:
                if not self.running.is_set():
                    raise kubeclient.ApiError(503, "unavailable")
                return getattr(self.store, name)(*args, **kw)

            return refused

    kube = Refusing(LeaseStore())
    a = election(kube, "a")
    assert a.acquire(threading.Event())
    a.start()
    kube.running.clear()
    started = time.monotonic()
    try:
        assert a.lost.wait(DURATION + 1)
        assert time.monotonic() - started < DURATION  # before the Lease could be taken from it
    finally:
        a.release()


@pytest.mark.parametrize(("duration", "deadline", "retry"), [(15, 15, 2), (15, 20, 2), (15, 10, 10)])
def test_timings_that_could_let_two_replicas_lead_are_refused(
    duration: float, deadline: float, retry: float
) -> None:
    with pytest.raises(ValueError, match="client-go uses"):
        LeaseElection(
            Pausable(LeaseStore()),  # type: ignore[arg-type]
            "kubetune",
            "kubetune-operator",
            "a",
            duration=duration,
            renew_deadline=deadline,
            retry_period=retry,
        )
