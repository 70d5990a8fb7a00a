"""Progress for large blob transfers: a rich bar on an interactive stderr, log lines otherwise.

A transfer asks for ``reporter.blob(name, total)`` and calls the returned function with each
number of bytes moved. Blobs under :data:`LARGE` are not reported. The log form emits at most one
line per 10% (and per second) so that a Pod's logs stay readable. Nothing here moves bytes.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kubetune import logs

log = logging.getLogger(__name__)
LARGE = 8 << 20

Advance = Callable[[int], None]


class Reporter(Protocol):
    def blob(self, name: str, total: int) -> contextlib.AbstractContextManager[Advance]: ...


class Silent:
    """Reports nothing."""

    @contextlib.contextmanager
    def blob(self, name: str, total: int) -> Iterator[Advance]:
        yield lambda _n: None


class LogLines:
    """Structured log lines: ``blob progress`` with name, bytes done, total and percent."""

    def __init__(self, action: str = "transfer") -> None:
        self.action = action

    @contextlib.contextmanager
    def blob(self, name: str, total: int) -> Iterator[Advance]:
        if total < LARGE:
            yield lambda _n: None
            return
        done, last_step, last_time = 0, -1, 0.0
        started = time.monotonic()

        def advance(n: int) -> None:
            nonlocal done, last_step, last_time
            done += n
            step = done * 10 // total if total else 10
            now = time.monotonic()
            if step != last_step and (now - last_time >= 1.0 or step >= 10):
                last_step, last_time = step, now
                log.info(
                    "blob progress",
                    extra=logs.fields(
                        action=self.action,
                        blob=name,
                        bytes=done,
                        total=total,
                        percent=round(100 * done / total, 1),
                    ),
                )

        yield advance
        seconds = time.monotonic() - started
        log.info(
            "blob done",
            extra=logs.fields(
                action=self.action,
                blob=name,
                bytes=total,
                seconds=round(seconds, 3),
                mib_per_s=round(total / (1 << 20) / seconds, 1) if seconds > 0 else None,
            ),
        )


class Bars:
    """A rich progress bar per large blob, on stderr."""

    def __init__(self, action: str = "transfer") -> None:
        self.action = action

    @contextlib.contextmanager
    def blob(self, name: str, total: int) -> Iterator[Advance]:
        if total < LARGE:
            yield lambda _n: None
            return
        columns = (
            TextColumn(f"{self.action} {{task.description}}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task(name, total=total)
            yield lambda n: bar.advance(task, n)


def default(action: str) -> Reporter:
    """Bars when stderr is a terminal, log lines otherwise."""
    return Bars(action) if sys.stderr.isatty() else LogLines(action)
