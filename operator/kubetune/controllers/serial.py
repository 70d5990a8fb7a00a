"""What both controllers share around one pass: a lock per object, so that two triggers of the
same object never reconcile it at once (different objects run in parallel), the timing and
error counting of every pass, and the retry with backoff of a pass that failed. No Kubernetes
calls and no decisions here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubetune import logs

log = logging.getLogger(__name__)


class PerObject:
    """One lock per (namespace, name), made on first use and dropped by :meth:`forget`.

    :attr:`guard` also protects whatever other per-object bookkeeping the reconciler keeps.
    Objects are keyed by name, but kopf handles each *uid*'s events in a worker of its own: the
    DELETED event of an object may be handled after the first events of a new object of the same
    name (deleted and applied again). So the reconciler records the uid it last reconciled under
    a name (:meth:`seen`), and :meth:`forget` only forgets the name for that uid.
    """

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._uids: dict[tuple[str, str], str] = {}

    def lock(self, namespace: str, name: str) -> threading.Lock:
        with self.guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def seen(self, namespace: str, name: str, uid: str | None) -> None:
        """Record that the object now under this name has ``uid``."""
        if uid:
            with self.guard:
                self._uids[(namespace, name)] = uid

    def forget(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Drop the name's lock unless a newer object (another uid) holds the name; True when dropped."""
        with self.guard:
            known = self._uids.get((namespace, name))
            if uid and known and known != uid:
                return False
            self._locks.pop((namespace, name), None)
            self._uids.pop((namespace, name), None)
            return True


@contextlib.contextmanager
def measured(errors: Any, seconds: Any) -> Iterator[None]:
    """Observe the pass's duration in ``seconds`` (a Histogram) and count an exception escaping
    it in ``errors`` (a Counter labelled by exception type) before it propagates."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        errors.labels(type(exc).__name__).inc()
        raise
    finally:
        seconds.observe(time.perf_counter() - started)


class Retry:
    """Runs reconciles and retries a failed one with backoff until it succeeds.

    kopf retries a failed create/update handler, but not a watching handler (which both
    controllers use); a reconcile that failed (API server unreachable, throttled, a conflict)
    must not leave its object waiting for an event that may never come. One pending retry per
    object; a later successful reconcile cancels it. Retries read the object afresh (no
    keyword arguments), so a retry of an object deleted meanwhile finds it gone and ends, and one
    of an object deleted and applied again reconciles the new one: a DELETED event cancels nothing.
    """

    def __init__(
        self, reconcile: Callable[..., object], *, kind: str, first: float = 1.0, most: float = 60.0
    ) -> None:
        self.reconcile = reconcile
        self.kind = kind
        self.first, self.most = first, most
        self._timers: dict[tuple[str, str], threading.Timer] = {}
        self._delays: dict[tuple[str, str], float] = {}
        self._guard = threading.Lock()

    def call(self, namespace: str, name: str, **kwargs: Any) -> None:
        key = (namespace, name)
        try:
            self.reconcile(namespace, name, **kwargs)
        except Exception as exc:
            with self._guard:
                delay = self._delays.get(key, self.first)
                self._delays[key] = min(delay * 2, self.most)
                if key not in self._timers:
                    timer = threading.Timer(delay, self._fire, args=key)
                    timer.daemon = True
                    self._timers[key] = timer
                    timer.start()
            log.warning(
                "reconcile failed; retrying",
                extra=logs.fields(
                    namespace=namespace, kind=self.kind, name=name, error=repr(exc), retry_seconds=delay
                ),
            )
            return
        with self._guard:
            self._delays.pop(key, None)
            pending = self._timers.pop(key, None)
        if pending is not None:
            pending.cancel()

    def _fire(self, namespace: str, name: str) -> None:
        with self._guard:
            self._timers.pop((namespace, name), None)
        self.call(namespace, name)
