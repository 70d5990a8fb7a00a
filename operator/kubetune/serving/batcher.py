"""The scheduler: a FIFO queue of validated requests and one worker thread that runs batches.

The oldest waiting request leads each batch; later requests for the same adapter join it while the
batch stays within ``max_batch_size``, the prefill token budget and the total token budget
(:func:`take_batch`, pure). Requests for other adapters keep their place for the next batch.
While a batch decodes, requests for its adapter that arrive may join it between two steps
(continuous batching, TGI's rule: when the waiting requests reach ``waiting_served_ratio`` times
the running ones, or after ``max_waiting_tokens`` steps without a prefill), but only while the
oldest waiting request is for the same adapter, so another adapter's requests never starve.

The engine is called from the worker thread only. Results go back through each entry's ``sink``,
which must be thread-safe (the HTTP layer hands in ``loop.call_soon_threadsafe``). Must not know
about HTTP, JSON or metrics other than TGI's queue and batch gauges.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kubetune import logs
from kubetune.serving import metrics
from kubetune.serving.generation import GenerationInput, Step, Timing

if TYPE_CHECKING:  # the scheduling logic is testable without torch
    from kubetune.serving.engine import Engine

log = logging.getLogger(__name__)

Sink = Callable[[Step | BaseException], None]


@dataclasses.dataclass(eq=False)
class Entry:
    request: GenerationInput
    sink: Sink
    timing: Timing
    cancelled: bool = False
    done: bool = False


@dataclasses.dataclass(frozen=True)
class Budget:
    max_batch_size: int
    max_prefill_tokens: int
    max_total_tokens: int
    waiting_served_ratio: float = 1.2
    max_waiting_tokens: int = 20


def take_batch(queue: list[Entry], budget: Budget, *, force_lead: bool = True) -> list[Entry]:
    """Removes and returns the next batch from ``queue`` (in place); empty if the queue is.

    Cancelled entries are dropped. The first live entry is taken even when it exceeds the budgets
    (``force_lead``: a new batch, so an oversized request cannot block the queue); others join
    only if they share its adapter and fit every budget.
    """
    queue[:] = [e for e in queue if not e.cancelled]
    if not queue or budget.max_batch_size < 1:
        return []
    lead = queue[0]
    fits = (
        len(lead.request.input_ids) <= budget.max_prefill_tokens
        and lead.request.budget <= budget.max_total_tokens
    )
    if not (force_lead or fits):
        return []
    batch = [lead]
    prefill = len(lead.request.input_ids)
    total = lead.request.budget
    for entry in queue[1:]:
        if len(batch) >= budget.max_batch_size:
            break
        if entry.request.adapter != lead.request.adapter:
            continue
        if prefill + len(entry.request.input_ids) > budget.max_prefill_tokens:
            continue
        if total + entry.request.budget > budget.max_total_tokens:
            continue
        batch.append(entry)
        prefill += len(entry.request.input_ids)
        total += entry.request.budget
    taken = set(map(id, batch))
    queue[:] = [e for e in queue if id(e) not in taken]
    return batch


class Batcher:
    def __init__(self, engine: Engine, budget: Budget, recorder: metrics.TgiMetrics) -> None:
        self.engine = engine
        self.budget = budget
        self.recorder = recorder
        self._queue: list[Entry] = []
        self._running: dict[int, Entry] = {}
        self._keys = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="kubetune-batcher", daemon=True)
        recorder.batch_max_total_tokens.set(budget.max_total_tokens)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, entry: Entry) -> None:
        with self._wake:
            entry.timing.queued = time.perf_counter()
            self._queue.append(entry)
            self.recorder.queue_size.set(len(self._queue))
            self._wake.notify()

    def _next(self) -> list[Entry] | None:
        with self._wake:
            while not self._stopping:
                queued = len(self._queue)
                batch = take_batch(self._queue, self.budget)
                if len(self._queue) != queued:
                    # not while idle: TGI's queue_size appears with the first queued request
                    self.recorder.queue_size.set(len(self._queue))
                if batch:
                    return batch
                self._wake.wait()
            return None

    def _admit(self, batch: list[Entry]) -> list[tuple[int, GenerationInput]]:
        start = time.perf_counter()
        pairs = []
        for entry in batch:
            entry.timing.batch_start = start
            key = next(self._keys)
            self._running[key] = entry
            pairs.append((key, entry.request))
        self.recorder.batch_next_size.observe(len(batch))
        return pairs

    def _join(
        self, adapter: str | None, running: int, running_budget: int, idle_steps: int
    ) -> list[tuple[int, GenerationInput]]:
        with self._wake:
            live = [e for e in self._queue if not e.cancelled]
            if not live or live[0].request.adapter != adapter:
                return []
            waiting = sum(1 for e in live if e.request.adapter == adapter)
            if not should_join(waiting, running, idle_steps, self.budget):
                return []
            room = dataclasses.replace(
                self.budget,
                max_batch_size=self.budget.max_batch_size - running,
                max_total_tokens=self.budget.max_total_tokens - running_budget,
            )
            batch = take_batch(self._queue, room, force_lead=False)
            self.recorder.queue_size.set(len(self._queue))
            return self._admit(batch) if batch else []

    def _emit(self, key: int, step: Step) -> None:
        entry = self._running[key]
        if step.finished is not None:
            entry.done = True
            entry.timing.end = time.perf_counter()
            del self._running[key]
        entry.sink(step)

    def _cancelled(self, key: int) -> bool:
        entry = self._running.get(key)
        return entry is None or entry.cancelled

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            adapter = batch[0].request.adapter
            pairs = self._admit(batch)
            self.recorder.batch_current_size.set(len(batch))
            self.recorder.batch_current_max_tokens.set(sum(e.request.budget for e in batch))

            def join(
                running: int, budget: int, idle: int, adapter: str | None = adapter
            ) -> list[tuple[int, GenerationInput]]:
                return self._join(adapter, running, budget, idle)

            try:
                self.engine.generate(pairs, self._emit, self._cancelled, self.recorder, join)
            except Exception as exc:
                log.exception("batch failed", extra=logs.fields(batch_size=len(self._running)))
                for entry in self._running.values():
                    if not entry.done:
                        entry.done = True
                        entry.sink(exc)
            finally:
                self._running.clear()  # cancelled rows that never finished
                self.recorder.batch_current_size.set(0)
                self.recorder.batch_current_max_tokens.set(0)


def should_join(waiting: int, running: int, idle_steps: int, budget: Budget) -> bool:
    """TGI's rule for pausing a decoding batch to prefill waiting requests into it."""
    if waiting == 0 or running >= budget.max_batch_size:
        return False
    return waiting >= budget.waiting_served_ratio * running or idle_steps >= budget.max_waiting_tokens
