"""What every route shares: the :class:`Runtime` (engine, batcher, metrics, limits) and the
response helpers that keep TGI's wire shapes (JSON bodies, ``{"error", "error_type"}`` errors,
server-sent events with ``x-compute-type``).

Used by the TGI routes (:mod:`app`), the OpenAI routes (:mod:`chat`) and :mod:`server`, so
neither route module imports the other's helpers. No routes and no model access here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Response
from fastapi.responses import StreamingResponse

import kubetune
from kubetune.serving import metrics, protocol
from kubetune.serving.config import Limits, ServeConfig
from kubetune.serving.engine import Engine
from kubetune.serving.inference import Inference


@dataclasses.dataclass
class Runtime:
    config: ServeConfig
    limits: Limits
    engine: Engine
    inference: Inference
    metrics: metrics.TgiMetrics
    compute_type: str = "cpu"

    @property
    def system_fingerprint(self) -> str:
        return f"{kubetune.__version__}-native"


def json_response(body: Any, status: int = 200, extra: dict[str, str] | None = None) -> Response:
    return Response(protocol.dumps(body), status_code=status, media_type="application/json", headers=extra)


def error_response(exc: protocol.ApiError) -> Response:
    return json_response(exc.body(), exc.status)


def sse_response(events: AsyncIterator[bytes], runtime: Runtime) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={**protocol.SSE_HEADERS, "x-compute-type": runtime.compute_type},
    )
