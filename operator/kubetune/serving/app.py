"""HTTP routes of TGI's native API: /generate, /generate_stream, /, /tokenize, /info, /health, /metrics.

Builds the FastAPI application around a :class:`~runtime.Runtime` (engine, batcher, metrics,
limits; shared with the OpenAI routes in :mod:`runtime`). Bodies
are parsed by :mod:`protocol` rather than FastAPI's validators so that errors keep TGI's
``{"error", "error_type"}`` shape; streams use TGI's framing (``data:{json}``, errors as events,
no ``[DONE]``). The OpenAI routes live in :mod:`chat`. Must not touch the model directly: every
generation goes through :class:`inference.Inference`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

import kubetune
from kubetune.serving import bodylimit, chat, metrics, protocol, validation
from kubetune.serving.inference import Inference, Outcome, headers
from kubetune.serving.runtime import Runtime, error_response, json_response, sse_response

ROUTER = "text-generation-router"
_OPEN_ROUTES = frozenset({"/health", "/ping", "/metrics"})


async def generate_once(
    runtime: Runtime, inputs: str, params: protocol.GenerateParameters, route: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """A non-streamed /generate: the response body and TGI's timing headers."""
    inference = runtime.inference
    timing = inference.begin()
    with inference.permit(params.adapter_id):
        request = inference.validate(inputs, params, timing)
        n = validation.best_of(params, inference.rules, stream=False)
        if n == 1:
            outcome = await inference.complete(request, timing)
            others: list[Outcome] = []
        else:
            outcomes = await asyncio.gather(*(_best_of_copy(inference, request, timing) for _ in range(n)))
            ranked = sorted(outcomes, key=_mean_logprob, reverse=True)
            outcome, others = ranked[0], ranked[1:]
        inference.succeeded(outcome, route)
    prefix = inputs if params.return_full_text else ""
    best_of = [(prefix + o.finished.generated_text, o.finished) for o in others] or None
    body = protocol.generate_response(
        prefix + outcome.finished.generated_text,
        outcome.finished,
        params.details or params.decoder_input_details,
        best_of,
    )
    return body, headers(outcome, runtime.compute_type, len(inputs))


async def _best_of_copy(inference: Inference, request: Any, timing: Any) -> Outcome:
    copy = dataclasses.replace(
        request, sampling=dataclasses.replace(request.sampling, seed=random.getrandbits(64))
    )
    return await inference.complete(copy, dataclasses.replace(timing))


def _mean_logprob(outcome: Outcome) -> float:
    tokens = outcome.finished.tokens
    return sum(t.logprob for t in tokens) / max(1, len(tokens))


async def generate_stream_events(
    runtime: Runtime, inputs: str, params: protocol.GenerateParameters, route: str
) -> AsyncIterator[bytes]:
    """TGI's /generate_stream events; any error (even before the first token) is an event."""
    inference = runtime.inference
    try:
        timing = inference.begin()
        with inference.permit(params.adapter_id):
            request = inference.validate(inputs, params, timing, stream=True)
            async for step in inference.steps(request, timing):
                text = None
                if step.finished is not None:
                    text = (inputs if params.return_full_text else "") + step.finished.generated_text
                    inference.succeeded(Outcome(step.finished, timing, request), route)
                yield protocol.sse(protocol.stream_response(step, text, params.details, request.top_n_tokens))
    except protocol.ApiError as exc:
        yield protocol.sse(exc.body())


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="kubetune serve (TGI-compatible)", version=kubetune.__version__, docs_url=None, redoc_url=None
    )
    app.state.runtime = runtime
    cfg = runtime.config

    @app.middleware("http")
    async def limits(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if (
            cfg.api_key
            and request.url.path not in _OPEN_ROUTES
            # constant time: how much of a guessed key matches must not show in the timing
            and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), f"Bearer {cfg.api_key}".encode()
            )
        ):
            return Response(status_code=401)
        return await call_next(request)

    # outermost: bodies are counted as they arrive, before any route reads one
    app.add_middleware(bodylimit.BodyLimit, limit=cfg.payload_limit)

    @app.post("/generate")
    async def generate(request: Request) -> Response:
        try:
            body = protocol.parse(protocol.GenerateRequest, await request.body())
            content, extra = await generate_once(runtime, body.inputs, body.parameters, "generate")
        except protocol.ApiError as exc:
            return error_response(exc)
        return json_response(content, extra=extra)

    @app.post("/generate_stream")
    async def generate_stream(request: Request) -> Response:
        try:
            body = protocol.parse(protocol.GenerateRequest, await request.body())
        except protocol.ApiError as exc:
            return error_response(exc)
        return sse_response(
            generate_stream_events(runtime, body.inputs, body.parameters, "generate_stream"), runtime
        )

    @app.post("/")
    async def compat_generate(request: Request) -> Response:
        return await _compat(runtime, await request.body())

    @app.post("/tokenize")
    async def tokenize(request: Request) -> Response:
        try:
            body = protocol.parse(protocol.TokenizeRequest, await request.body())
        except protocol.ApiError as exc:
            return error_response(exc)
        pieces = [
            {"id": i, "text": body.inputs[start:stop], "start": start, "stop": stop}
            for i, start, stop in runtime.engine.offsets(body.inputs, body.add_special_tokens)
        ]
        return json_response(pieces)

    async def health() -> Response:
        if runtime.inference.batcher.alive:
            return Response(status_code=200)
        return json_response({"error": "unhealthy", "error_type": "healthcheck"}, 503)

    for path in ("/health", "/ping", "/"):
        app.add_api_route(path, health, methods=["GET"])

    @app.get("/info")
    async def info() -> Response:
        return json_response(
            {
                "model_id": runtime.engine.model_id,
                "model_sha": None,
                "model_pipeline_tag": None,
                "max_concurrent_requests": cfg.max_concurrent_requests,
                "max_best_of": cfg.max_best_of,
                "max_stop_sequences": cfg.max_stop_sequences,
                "max_input_tokens": runtime.limits.max_input_tokens,
                "max_total_tokens": runtime.limits.max_total_tokens,
                "validation_workers": cfg.validation_workers,
                "max_client_batch_size": cfg.max_client_batch_size,
                "router": ROUTER,
                "version": kubetune.__version__,
                "sha": None,
                "docker_label": None,
            }
        )

    @app.get("/metrics")
    async def metrics_route() -> Response:
        return Response(runtime.metrics.render(), media_type=metrics.CONTENT_TYPE)

    handlers = chat.register(app, runtime)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        raw = await request.body()
        try:
            keys = json.loads(raw)
        except ValueError:
            keys = {}
        if isinstance(keys, dict) and "messages" in keys:
            return await handlers.chat(raw)
        if isinstance(keys, dict) and "prompt" in keys:
            return await handlers.completions(raw)
        return await _compat(runtime, raw)

    return app


async def _compat(runtime: Runtime, raw: bytes) -> Response:
    """POST /: TGI's compatibility route; an array response, or a stream when stream=true."""
    try:
        body = protocol.parse(protocol.CompatGenerateRequest, raw)
        if body.stream:
            return sse_response(
                generate_stream_events(runtime, body.inputs, body.parameters, "compat_stream"), runtime
            )
        content, extra = await generate_once(runtime, body.inputs, body.parameters, "compat_generate")
    except protocol.ApiError as exc:
        return error_response(exc)
    return json_response([content], extra=extra)
