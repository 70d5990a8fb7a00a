"""Training progress as structured events, and the sinks that show or forward them.

The loop emits :class:`ProgressEvent` (step/total, epoch, loss, learning rate, effective
tokens/s, ETA) and :class:`PhaseEvent` (preflight, training, evaluating, exporting, a
checkpoint written...). A :class:`Sink` receives them: :class:`JsonLinesSink` writes one JSON
object per line (what a training pod prints and the operator can tail), :class:`BarSink` draws
a rich progress bar on a terminal; the operator adds a status sink. :func:`to_status` maps an
event onto the API's ``Progress``. No training logic here.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any, Protocol, TextIO

from kubetune.api.v1alpha1.base import rfc3339
from kubetune.api.v1alpha1.finetunejob import Progress


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """One optimizer step's report."""

    step: int
    total_steps: int
    epoch: float
    loss: float
    learning_rate: float
    tokens_per_second: float
    eta_seconds: float
    eval_loss: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event": "progress", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class PhaseEvent:
    """A phase started or something notable happened (``detail`` carries its data)."""

    phase: str
    message: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"event": "phase", "phase": self.phase, "message": self.message, **self.detail}


Event = ProgressEvent | PhaseEvent


def from_json(data: dict[str, Any]) -> Event | None:
    """The event a :class:`JsonLinesSink` line came from (another process's progress); None for
    anything else."""
    kind = data.get("event")
    if kind == "progress":
        fields = {f.name for f in dataclasses.fields(ProgressEvent)}
        try:
            return ProgressEvent(**{k: v for k, v in data.items() if k in fields})
        except TypeError:
            return None
    if kind == "phase" and isinstance(data.get("phase"), str):
        detail = {k: v for k, v in data.items() if k not in ("event", "phase", "message")}
        return PhaseEvent(data["phase"], str(data.get("message", "")), detail)
    return None


class Sink(Protocol):
    """Receives every event of a run."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


def to_status(event: ProgressEvent, now: float | None = None) -> Progress:
    """The API ``status.progress`` for an event."""
    from datetime import UTC, datetime

    percent = 100.0 * event.step / event.total_steps if event.total_steps else 0.0
    return Progress(
        step=event.step,
        total_steps=event.total_steps,
        epoch=round(event.epoch, 4),
        loss=event.loss,
        eval_loss=event.eval_loss,
        learning_rate=event.learning_rate,
        tokens_per_second=round(event.tokens_per_second, 1),
        eta_seconds=round(event.eta_seconds, 1),
        summary=f"{event.step}/{event.total_steps} ({percent:.0f}%)",
        update_time=rfc3339(datetime.fromtimestamp(now if now is not None else time.time(), UTC)),
    )


class JsonLinesSink:
    """One JSON object per event and line, flushed at once (for pods and pipes)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def emit(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_json(), default=str) + "\n")
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
