"""A client of `kubetune serve` (any tenant that can reach a serving pod) cannot make it buffer an
unbounded body: the payload limit holds for chunked bodies that carry no Content-Length."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kubetune.testing.servers import Server, build_tiny_model, launch_model

API_KEY = "security-suite-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve-bodies")
    model = build_tiny_model(root)
    started = launch_model("bodies", model, root, "--api-key", API_KEY, "--payload-limit", "4096")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def _peak_rss_mib(server: Server) -> float:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _chunks(total: int, size: int = 1 << 16) -> Iterator[bytes]:
    yield b'{"inputs": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


def test_a_chunked_body_over_the_payload_limit_gets_413_without_being_read_whole(
    server: Server,
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    # no Content-Length: requests sends a generator with Transfer-Encoding: chunked
    small = requests.post(f"{server.url}/generate", data=_chunks(1 << 16), headers=headers, timeout=30)
    assert small.status_code == 413 and small.text == "length limit exceeded"
    assert small.request.headers.get("Transfer-Encoding") == "chunked"
    before = _peak_rss_mib(server)
    try:
        big = requests.post(f"{server.url}/generate", data=_chunks(256 << 20), headers=headers, timeout=60)
        assert big.status_code == 413
    except requests.ConnectionError:
        pass  # the server answered 413 and closed while the client was still sending
    assert _peak_rss_mib(server) - before < 64, "the server buffered a body past the limit"
    assert (
        server.post(
            "/generate", {"inputs": "hi", "parameters": {"max_new_tokens": 1}}, headers=headers
        ).status_code
        == 200
    )
