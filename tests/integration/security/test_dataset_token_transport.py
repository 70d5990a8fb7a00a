"""A dataset's ``secretRef`` token never travels in clear and never follows a redirect to another
host: checked with real local HTTP(S) servers and the trainer's download client (no cluster)."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubetune.clients import download
from kubetune.testing import pki

Seen = list[tuple[str, str | None]]  # (path, Authorization header)


def serve(
    handler: Callable[[http.server.BaseHTTPRequestHandler], None], context: ssl.SSLContext | None
) -> tuple[http.server.ThreadingHTTPServer, Seen]:
    seen: Seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            handler(self)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def data(req: http.server.BaseHTTPRequestHandler) -> None:
    body = b'{"text": "hello"}\n'
    req.send_response(200)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


def redirect_to(url: str) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(302)
        req.send_header("Location", url)
        req.send_header("Content-Length", "0")
        req.end_headers()

    return handler


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ssl.SSLContext]:
    """A server context for 127.0.0.1 and localhost, trusted by requests through REQUESTS_CA_BUNDLE."""
    keys = pki.create(tmp_path / "pki")  # serving certificate for 127.0.0.1 and localhost
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(keys.ca_crt))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(keys.serving_crt), str(keys.serving_key))
    yield context


def test_a_token_is_never_sent_over_plain_http(tmp_path: Path) -> None:
    server, seen = serve(data, None)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/train.jsonl"
        with pytest.raises(download.DownloadError, match="plain http://"):
            download.download(url, tmp_path / "train.jsonl", token="s3cret")
        assert seen == []  # refused before connecting
        download.download(url, tmp_path / "public.jsonl")  # a public file without a token is fine
        assert seen == [("/train.jsonl", None)]
    finally:
        server.shutdown()


def test_a_redirect_to_another_host_drops_the_token(tmp_path: Path, tls: ssl.SSLContext) -> None:
    other, other_seen = serve(data, tls)
    first, first_seen = serve(redirect_to(f"https://localhost:{other.server_address[1]}/moved.jsonl"), tls)
    try:
        download.download(
            f"https://127.0.0.1:{first.server_address[1]}/train.jsonl", tmp_path / "t.jsonl", token="s3cret"
        )
        assert first_seen == [("/train.jsonl", "Bearer s3cret")]
        assert other_seen == [("/moved.jsonl", None)]
        assert (tmp_path / "t.jsonl").read_bytes() == b'{"text": "hello"}\n'
    finally:
        first.shutdown()
        other.shutdown()


def test_a_redirect_on_the_same_host_and_port_keeps_the_token(tmp_path: Path, tls: ssl.SSLContext) -> None:
    """The control for the test above: these servers do see the header when it is sent."""

    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        if req.path == "/train.jsonl":
            redirect_to("/moved.jsonl")(req)
        else:
            data(req)

    server, seen = serve(handler, tls)
    try:
        download.download(
            f"https://127.0.0.1:{server.server_address[1]}/train.jsonl", tmp_path / "t.jsonl", token="s3cret"
        )
        assert seen == [("/train.jsonl", "Bearer s3cret"), ("/moved.jsonl", "Bearer s3cret")]
    finally:
        server.shutdown()
