"""Registry credentials go only to the registry they belong to, whatever a registry answers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubetune import registry
from kubetune.registry import auth


class _Recorder(ThreadingHTTPServer):
    """An HTTP server that answers with ``reply(handler)`` and records each request's headers."""

    def __init__(self, reply: Any) -> None:
        self.seen: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                server.seen.append({k.lower(): v for k, v in self.headers.items()})
                status, headers, body = reply(self)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


def test_credentials_never_follow_a_link_to_another_host(tmp_path: Path) -> None:
    """A registry (hostile, or just redirecting) names another origin in a Link header: the
    next page is fetched from there, but without this registry's credentials."""
    other = _Recorder(lambda h: (200, {"Content-Type": "application/json"}, b'{"tags": ["b"]}'))

    def hostile(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if "Authorization" not in handler.headers:
            return 401, {"WWW-Authenticate": 'Basic realm="hostile"'}, b""
        link = f'<http://{other.host}/v2/team/bot/tags/list?last=a>; rel="next"'
        return 200, {"Content-Type": "application/json", "Link": link}, b'{"tags": ["a"]}'

    first = _Recorder(hostile)
    try:
        creds = auth.Credentials(username="ci", password="s3cret-password")
        options = registry.Options(insecure=True, credentials=creds)
        assert registry.list_tags(f"oci://{first.host}/team/bot", options=options) == ["a", "b"]
        assert any("authorization" in h for h in first.seen)  # its own registry gets them
        assert other.seen and all("authorization" not in h for h in other.seen), other.seen
    finally:
        first.shutdown()
        other.shutdown()
