"""One request's trip through the runtime, shared by the TGI and OpenAI routes.

Order, as in TGI's ``Infer``: count the request, take a concurrency permit (or 429 ``overloaded``),
validate (422), then apply injected faults (latency, then a 500 draw), queue for the batcher and
relay its token steps. Completed requests record TGI's request histograms and success counter;
failed ones ``tgi_request_failure{err}``. The permit is held until the last token is delivered or
the client goes away (then the sequence is cancelled in its batch).

Runs on the event loop; never blocks on the model (the batcher's thread does that).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator

from kubetune import logs
from kubetune.serving import faults, metrics, protocol, validation
from kubetune.serving.batcher import Batcher, Entry
from kubetune.serving.engine import Engine
from kubetune.serving.generation import Finished, GenerationInput, Step, Timing

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Outcome:
    """A completed generation: its final step details and its clock."""

    finished: Finished
    timing: Timing
    request: GenerationInput


class Inference:
    def __init__(
        self,
        engine: Engine,
        batcher: Batcher,
        recorder: metrics.TgiMetrics,
        fault_injector: faults.Faults,
        rules: validation.Rules,
        max_concurrent_requests: int,
    ) -> None:
        self.engine = engine
        self.batcher = batcher
        self.metrics = recorder
        self.faults = fault_injector
        self.rules = rules
        self.max_concurrent_requests = max_concurrent_requests
        self.in_flight = 0

    # ---- admission ---------------------------------------------------------------------------

    def begin(self) -> Timing:
        """Counts the request (TGI counts on entry to every generate or chat route)."""
        self.metrics.request_count.inc()
        return Timing(start=time.perf_counter())

    @contextlib.contextmanager
    def permit(self, adapter_hint: str | None = None) -> Iterator[None]:
        """Holds one of ``max_concurrent_requests`` slots; records failures raised inside."""
        if self.in_flight >= self.max_concurrent_requests:
            self._failed(protocol.overloaded(), adapter_hint)
            raise protocol.overloaded()
        self.in_flight += 1
        try:
            yield
        except protocol.ApiError as exc:
            self._failed(exc, adapter_hint)
            raise
        finally:
            self.in_flight -= 1

    def validate(
        self,
        inputs: str,
        params: protocol.GenerateParameters,
        timing: Timing,
        *,
        stream: bool = False,
        add_special_tokens: bool = True,
    ) -> GenerationInput:
        request = validation.validate(
            inputs,
            params,
            self.rules,
            self.engine.tokenize,
            stream=stream,
            add_special_tokens=add_special_tokens,
        )
        timing.validated = time.perf_counter()
        self.metrics.request_input_length.observe(len(request.input_ids))
        self.metrics.request_max_new_tokens.observe(request.max_new_tokens)
        return request

    # ---- generation --------------------------------------------------------------------------

    async def steps(self, request: GenerationInput, timing: Timing) -> AsyncIterator[Step]:
        """Injected faults, then the batcher's steps for ``request`` until its last token."""
        if self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)
            timing.injected_latency += self.faults.latency_s
        if self.faults.should_fail():
            log.info("injected fault", extra=logs.fields(fault="error", adapter=request.adapter))
            raise protocol.incomplete_generation()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Step | BaseException] = asyncio.Queue()

        def sink(item: Step | BaseException) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        entry = Entry(request, sink, timing)
        self.batcher.submit(entry)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise protocol.generation_error(str(item) or type(item).__name__)
                yield item
                if item.finished is not None:
                    return
        finally:
            if not entry.done:
                entry.cancelled = True

    async def complete(self, request: GenerationInput, timing: Timing) -> Outcome:
        async for step in self.steps(request, timing):
            if step.finished is not None:
                return Outcome(step.finished, timing, request)
        raise protocol.generation_error("the generation ended without a final token")

    # ---- bookkeeping -------------------------------------------------------------------------

    def succeeded(self, outcome: Outcome, route: str) -> None:
        timing, finished = outcome.timing, outcome.finished
        timing.responded = time.perf_counter()
        timing.end = timing.end or timing.responded
        per_token = timing.inference / max(1, finished.generated_tokens)
        m = self.metrics
        m.request_success.inc()
        m.request_duration.observe(timing.total)
        m.request_validation_duration.observe(timing.validation)
        m.request_queue_duration.observe(timing.queue)
        m.request_inference_duration.observe(timing.inference)
        m.request_mean_time_per_token_duration.observe(per_token)
        m.request_generated_tokens.observe(finished.generated_tokens)
        m.request_skipped_tokens.observe(0)
        m.adapter_requests.inc(adapter=outcome.request.adapter or "base", outcome="success")
        log.info(
            "success",
            extra=logs.fields(
                route=route,
                adapter=outcome.request.adapter,
                input_tokens=finished.input_length,
                generated_tokens=finished.generated_tokens,
                finish_reason=finished.finish_reason.value,
                total_ms=round(timing.total * 1000, 2),
                queue_ms=round(timing.queue * 1000, 2),
                inference_ms=round(timing.inference * 1000, 2),
            ),
        )

    def _failed(self, exc: protocol.ApiError, adapter_hint: str | None) -> None:
        if exc.reason is None:
            return
        self.metrics.request_failure.inc(err=exc.reason)
        adapter = (
            "base" if not adapter_hint else adapter_hint if adapter_hint in self.rules.adapters else "unknown"
        )
        self.metrics.adapter_requests.inc(adapter=adapter, outcome=exc.reason)
        log.info(
            "request failed", extra=logs.fields(error_type=exc.error_type, error=exc.message, adapter=adapter)
        )


def headers(outcome: Outcome, compute_type: str, characters: int) -> dict[str, str]:
    """TGI's response headers; times in whole milliseconds except x-compute-time (seconds)."""
    timing, finished = outcome.timing, outcome.finished
    per_token = timing.inference / max(1, finished.generated_tokens)
    return {
        "x-compute-type": compute_type,
        "x-compute-time": repr(timing.total),
        "x-compute-characters": str(characters),
        "x-total-time": str(int(timing.total * 1000)),
        "x-validation-time": str(int(timing.validation * 1000)),
        "x-queue-time": str(int(timing.queue * 1000)),
        "x-inference-time": str(int(timing.inference * 1000)),
        "x-time-per-token": str(int(per_token * 1000)),
        "x-prompt-tokens": str(finished.input_length),
        "x-generated-tokens": str(finished.generated_tokens),
    }
