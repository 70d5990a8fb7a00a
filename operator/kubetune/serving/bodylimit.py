"""Request bodies capped at ``--payload-limit`` bytes as they arrive, whatever their framing.

A ``Content-Length`` check alone lets a chunked body (no length header) through, and the app
would then read it whole into memory. This pure ASGI middleware counts the bytes of every
``http.request`` message and answers 413 ``length limit exceeded`` (as TGI's axum body limit does)
as soon as the count passes the limit, without reading the rest. Bodies within the limit are
handed to the app in one message; later ``receive()`` calls (a client disconnecting during a
stream) pass through. Knows nothing of routes or the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

TOO_LARGE = b"length limit exceeded"


class BodyLimit:
    """Wraps an ASGI app; ``limit`` is the largest body in bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody to answer
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await _refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE, "more_body": False})
