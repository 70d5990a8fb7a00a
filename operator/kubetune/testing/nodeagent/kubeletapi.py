"""The slice of the kubelet HTTPS API the API server proxies to: container logs and health.

With it, ``kubectl logs`` and ``read_namespaced_pod_log`` work against the test cluster
(``tailLines``, ``limitBytes`` and ``follow``; ``previous`` and ``timestamps`` are ignored:
the log file is appended across restarts). ``exec``, ``attach`` and ``port-forward`` answer
404. Serves files written by the pod workers; never calls the API server.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)
LogPath = Callable[[str, str, str], Path]
IsRunning = Callable[[str, str, str], bool]


def _tail(data: bytes, lines: int) -> bytes:
    if lines < 0:
        return data
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:]) if lines else b""


class KubeletApi:
    """HTTPS server on ``(host, port)``; ``log_path`` maps (ns, pod, container) to a file."""

    def __init__(
        self, address: tuple[str, int], cert: Path, key: Path, log_path: LogPath, is_running: IsRunning
    ) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                log.debug("kubelet api: " + format, *args)

            def do_GET(self) -> None:
                api.handle(self)

            def do_POST(self) -> None:  # exec, attach, port-forward
                api._send(
                    self, 404, b"exec/attach/port-forward are not supported by the kubetune test node agent\n"
                )

        self.log_path = log_path
        self.is_running = is_running
        self.server = ThreadingHTTPServer(address, Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="kubelet-api", daemon=True)
        self.closed = threading.Event()

    def start(self) -> KubeletApi:
        self.thread.start()
        return self

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlparse(req.path)
        parts = url.path.strip("/").split("/")
        if url.path in ("/healthz", "/readyz", "/livez"):
            self._send(req, 200, b"ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._send(req, 404, b"not supported by the kubetune test node agent\n")
            return
        ns, pod, container = parts[1:]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = self.log_path(ns, pod, container)
        if not path.exists():
            self._send(req, 404, f"no logs for container {container} of pod {ns}/{pod}\n".encode())
            return
        data = _tail(path.read_bytes(), int(query.get("tailLines", "-1")))
        limit = int(query.get("limitBytes", "0"))
        if limit:
            data = data[:limit]
        if query.get("follow") not in ("true", "1"):
            self._send(req, 200, data)
            return
        req.send_response(200)
        req.send_header("Content-Type", "text/plain")
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        offset = path.stat().st_size
        try:
            self._chunk(req, data)
            while not self.closed.is_set():
                size = path.stat().st_size
                if size > offset:
                    with path.open("rb") as f:
                        f.seek(offset)
                        chunk = f.read(size - offset)
                    offset = size
                    self._chunk(req, chunk)
                elif not self.is_running(ns, pod, container):
                    break
                else:
                    time.sleep(0.2)
            req.wfile.write(b"0\r\n\r\n")
        except OSError:
            return

    @staticmethod
    def _chunk(req: BaseHTTPRequestHandler, data: bytes) -> None:
        if data:  # an empty chunk would end the stream
            req.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            req.wfile.flush()

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, code: int, body: bytes) -> None:
        req.send_response(code)
        req.send_header("Content-Type", "text/plain")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        with contextlib.suppress(OSError):
            req.wfile.write(body)
