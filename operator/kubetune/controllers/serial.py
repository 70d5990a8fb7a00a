"""What both controllers share around one pass: a lock per object, so that two triggers of the
same object never reconcile it at once (different objects run in parallel), the timing and
error counting of every pass, and the retry with backoff of a pass that failed. No Kubernetes
calls and no decisions here.
"""

from __future__ import annotations

import concurrent.futures
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


Key = tuple[str, str]


class Scheduler:
    """Runs each key's pending call when it is due, from one thread, on a small pool.

    A key has at most one pending call; asking again keeps whichever is due first. One thread
    waits for all of them (not a timer thread per object), and the calls run on a pool so that
    one slow reconcile does not hold back the others.
    """

    def __init__(self, workers: int = 4) -> None:
        self._cond = threading.Condition()
        self._due: dict[Key, tuple[float, Callable[[], None]]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="kubetune-requeue"
        )
        self._thread: threading.Thread | None = None

    def schedule(self, key: Key, delay: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` in ``delay`` seconds, unless a call of ``key`` is due sooner."""
        when = time.monotonic() + delay
        with self._cond:
            pending = self._due.get(key)
            if pending is None or when < pending[0]:
                self._due[key] = (when, fn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kubetune-scheduler", daemon=True)
                self._thread.start()
            self._cond.notify()

    def cancel(self, key: Key) -> None:
        with self._cond:
            self._due.pop(key, None)

    def pending(self) -> set[Key]:
        with self._cond:
            return set(self._due)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                ready = [(key, fn) for key, (when, fn) in self._due.items() if when <= now]
                for key, _ in ready:
                    del self._due[key]
                if not ready:
                    soonest = min((when for when, _ in self._due.values()), default=None)
                    self._cond.wait(None if soonest is None else soonest - now)
                    continue
            for _, fn in ready:
                self._pool.submit(fn)


class Retry:
    """Runs reconciles, retries a failed one with backoff until it succeeds, and requeues one
    whose result asks for it.

    kopf retries a failed create/update handler, but not a watching handler (which both
    controllers use); a reconcile that failed (API server unreachable, throttled, a conflict)
    must not leave its object waiting for an event that may never come. One pending call per
    object; a later successful reconcile cancels it. ``requeue`` maps a successful reconcile's
    result to seconds after which to reconcile again when nothing else has (controller-runtime's
    ``RequeueAfter``), or None: a safety net for objects that otherwise wait on child events
    alone. Retries read the object afresh (no keyword arguments), so a retry of an object deleted
    meanwhile finds it gone and ends, and one of an object deleted and applied again reconciles
    the new one: a DELETED event cancels nothing. Unlike a kopf timer, this adds no finalizer.
    """

    def __init__(
        self,
        reconcile: Callable[..., object],
        *,
        kind: str,
        first: float = 1.0,
        most: float = 60.0,
        requeue: Callable[[object], float | None] | None = None,
    ) -> None:
        self.reconcile = reconcile
        self.kind = kind
        self.first, self.most = first, most
        self.requeue = requeue
        self.scheduler = Scheduler()
        self._delays: dict[Key, float] = {}
        self._guard = threading.Lock()

    def call(self, namespace: str, name: str, **kwargs: Any) -> None:
        key = (namespace, name)
        try:
            result = self.reconcile(namespace, name, **kwargs)
        except Exception as exc:
            with self._guard:
                delay = self._delays.get(key, self.first)
                self._delays[key] = min(delay * 2, self.most)
            self.scheduler.schedule(key, delay, lambda: self.call(namespace, name))
            log.warning(
                "reconcile failed; retrying",
                extra=logs.fields(
                    namespace=namespace, kind=self.kind, name=name, error=repr(exc), retry_seconds=delay
                ),
            )
            return
        with self._guard:
            self._delays.pop(key, None)
        self.scheduler.cancel(key)
        after = self.requeue(result) if self.requeue is not None else None
        if after is not None:
            self.scheduler.schedule(key, after, lambda: self.call(namespace, name))
