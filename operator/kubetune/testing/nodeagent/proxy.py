"""A TCP forwarder: the agent's stand-in for kube-proxy's rule for the ``kubernetes`` Service.

Pods live in their own network namespaces and cannot reach the API server on the host's
127.0.0.1, so the agent listens on the Service IP (on the host's ``lo``) and copies bytes both
ways. TLS passes through untouched; the serving certificate names the Service IP. One thread
accepts, two threads per connection copy. Nothing here knows about Kubernetes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

log = logging.getLogger(__name__)


class TcpForwarder:
    """Forward connections on ``listen`` to ``target`` until :meth:`close`."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(listen, reuse_port=False)
        self._server.settimeout(0.5)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"forward-{listen[0]}", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> TcpForwarder:
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError as exc:
            log.warning("forward to %s failed: %s", self.target, exc)
            conn.close()
            return
        upstream.settimeout(None)
        conn.settimeout(None)
        threading.Thread(target=_pump, args=(upstream, conn), daemon=True).start()
        _pump(conn, upstream)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.close()
        self._thread.join(timeout=2)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        src.close()
