"""The sinks that show or forward a run's events.

The loop and the pipeline emit the contract's events (:mod:`kubetune.api.contract.events`:
:class:`ProgressEvent` per step, :class:`PhaseEvent` for phases, checkpoints and the result).
A :class:`Sink` receives them: :class:`JsonLinesSink` writes one JSON object per line (what a
training pod prints and the operator reads), :class:`BarSink` draws a rich progress bar on a
terminal; a training pod adds the status sink (:mod:`.statussink`). No training logic here.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

from kubetune.api.contract.events import Event, PhaseEvent, ProgressEvent, to_line

__all__ = ["Event", "PhaseEvent", "ProgressEvent", "Sink"]


class Sink(Protocol):
    """Receives every event of a run."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """One JSON object per event and line, flushed at once (for pods and pipes)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def emit(self, event: Event) -> None:
        self.stream.write(to_line(event) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class BarSink:
    """A rich progress bar on stderr for the steps, and one line per phase."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(file=stream or sys.stderr)
        self.bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None

    def emit(self, event: Event) -> None:
        if isinstance(event, PhaseEvent):
            self.console.print(f"[cyan]{event.phase}[/cyan] {event.message}")
            return
        info = f"epoch {event.epoch:.2f} loss {event.loss:.4f} lr {event.learning_rate:.2e} {event.tokens_per_second:,.0f} tok/s"
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("train", total=event.total_steps, info=info)
        self.bar.update(self.task, completed=event.step, info=info)
        if event.step >= event.total_steps:
            self.bar.stop()

    def close(self) -> None:
        self.bar.stop()


class MultiSink:
    """Forwards every event to several sinks."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class NullSink:
    """Drops events (library use, tests)."""

    def emit(self, event: Event) -> None:
        return None

    def close(self) -> None:
        return None


class ListSink:
    """Keeps events in memory (tests, the benchmark)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        return None


def default(mode: str = "auto", stream: TextIO | None = None) -> Sink:
    """``bar`` on a terminal, ``json`` otherwise (``auto``), or ``none``."""
    out = stream or sys.stderr
    if mode == "auto":
        mode = "bar" if out.isatty() else "json"
    if mode == "bar":
        return BarSink(out)
    if mode == "json":
        return JsonLinesSink(out)
    return NullSink()
