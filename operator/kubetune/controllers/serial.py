"""What both controllers' reconcilers share around one pass: a lock per object, so that two
triggers of the same object never reconcile it at once (different objects run in parallel),
and the timing and error counting of every pass. No Kubernetes calls and no decisions here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any


class PerObject:
    """One lock per (namespace, name), made on first use and dropped by :meth:`forget`.

    :attr:`guard` also protects whatever other per-object bookkeeping the reconciler keeps.
    """

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    def lock(self, namespace: str, name: str) -> threading.Lock:
        with self.guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def forget(self, namespace: str, name: str) -> None:
        with self.guard:
            self._locks.pop((namespace, name), None)


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
