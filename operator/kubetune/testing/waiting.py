"""Polling with a deadline: the one way tests and the harness wait for a condition.

``wait_for`` replaces sleeps used as synchronisation. It returns the predicate's first truthy
value, so a test can wait for an object and use it in one step, and on timeout it names what
it was waiting for and the last value or error it saw. It must not import Kubernetes code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold in time. An AssertionError, so pytest shows it as a failure."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy; return that value.

    ``ignore`` lists exception types that count as "not yet" (for example a 404 while an object
    is being created); any other exception propagates at once. On timeout, raises
    :class:`WaitTimeout` naming ``what`` and the last value or error seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            value, last = None, exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
