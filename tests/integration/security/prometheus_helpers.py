"""Servers and objects for the Prometheus tenancy tests: a trickling server, a recording server,
and one canary analysis run through the operator's own code path.

:func:`analyse` runs :meth:`Reconciler._analyse`, the step of a ModelDeployment reconcile that
picks the Prometheus (settings and allowlist), makes the clients and runs
:func:`observe.analysis_outcome`: the same code the operator runs, minus the Kubernetes reads
and writes around it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeVar

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.api.v1alpha1.modeldeployment import ModelDeploymentStatus
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome
from kubetune.controllers.modeldeployment.reconcile import Reconciler
from kubetune.testing.servers import LOOPBACK

T = TypeVar("T")
CANARY, STABLE = "c0ffee", "5ab1e"


class Trickler:
    """A TCP server on 127.0.0.1 that answers every request one byte every ``every`` seconds,
    forever: a status line and then an endless header (``headers``) or an endless body (``body``).
    Each byte arrives well within any socket read timeout."""

    def __init__(self, mode: Literal["headers", "body"], every: float = 0.2) -> None:
        self.mode, self.every = mode, every
        self.requests = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.url = f"http://{LOOPBACK}:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Trickler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                with self._lock:
                    self.requests += 1
                if self.mode == "headers":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                else:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100000000\r\n\r\n"
                    )
                while not self._stop.wait(self.every):
                    conn.sendall(b"a" if self.mode == "headers" else b" ")
            except OSError:
                return


class Recorder:
    """An HTTP server on 127.0.0.1 that counts requests and answers each with ``status`` and
    ``body`` (by default a Prometheus API answer: one sample of 1)."""

    ANSWER = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]},
    }

    def __init__(self, status: int = 200, body: bytes | None = None) -> None:
        self.requests: list[str] = []
        recorder = self
        payload = body if body is not None else json.dumps(self.ANSWER).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def _answer(self) -> None:
                recorder.requests.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def model_deployment(namespace: str, name: str = "bot", **analysis: Any) -> ModelDeployment:
    """A ModelDeployment whose canary is under analysis (``analysis`` as written in YAML)."""
    return ModelDeployment.model_validate(
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "baseModel": {"uri": "pvc://data/model"},
                "rollout": {
                    "steps": [{"setWeight": 50}],
                    "analysis": {"interval": "10s", "window": "30s", "minSamples": 1, **analysis},
                },
            },
        }
    )


def analyse(reconciler: Reconciler, mdep: ModelDeployment) -> AnalysisOutcome:
    """One analysis of the canary of ``mdep``, as a reconcile runs it when one is due."""
    status = ModelDeploymentStatus(phase="Progressing", canary_revision=CANARY, stable_revision=STABLE)
    return reconciler._analyse(mdep, status, datetime.now(UTC))


def within(seconds: float, fn: Callable[[], T]) -> T:
    """``fn()`` in a daemon thread; AssertionError if it has not returned after ``seconds``
    (so that a test of code that hangs fails instead of hanging)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"still running after {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
