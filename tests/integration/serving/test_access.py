"""--api-key and --payload-limit (on the quantized server, which sets both), including chunked
bodies that carry no Content-Length."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import requests

from kubetune.testing.servers import Server

from .conftest import API_KEY


def test_api_key_is_required_except_for_probes_and_metrics(quantized_server: Server) -> None:
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 1}}
    assert quantized_server.post("/generate", body).status_code == 401
    assert (
        quantized_server.post("/generate", body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    assert (
        quantized_server.post("/generate", body, headers={"Authorization": f"Bearer {API_KEY}"}).status_code
        == 200
    )
    for path in ("/health", "/metrics"):
        assert requests.get(f"{quantized_server.url}{path}", timeout=10).status_code == 200


def test_bodies_over_the_payload_limit_get_413(quantized_server: Server) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    response = quantized_server.post("/generate", {"inputs": "x" * 5000}, headers=headers)
    assert response.status_code == 413


def test_invocations_dispatches_on_the_body(server: Server) -> None:
    generate = server.post("/invocations", {"inputs": "hi", "parameters": {"max_new_tokens": 2}})
    assert isinstance(generate.json(), list) and "generated_text" in generate.json()[0]
    chat = server.post("/invocations", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert chat.json()["object"] == "chat.completion"
    completion = server.post("/invocations", {"prompt": "hi", "max_tokens": 2})
    assert completion.json()["object"] == "text_completion"


def _peak_rss_mib(server: Server) -> float:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _chunks(total: int, size: int = 1 << 16) -> Iterator[bytes]:
    yield b'{"inputs": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


def test_a_chunked_body_over_the_payload_limit_gets_413_without_being_read_whole(
    quantized_server: Server,
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    # no Content-Length: requests sends a generator with Transfer-Encoding: chunked
    small = requests.post(
        f"{quantized_server.url}/generate", data=_chunks(1 << 16), headers=headers, timeout=30
    )
    assert small.status_code == 413 and small.text == "length limit exceeded"
    assert small.request.headers.get("Transfer-Encoding") == "chunked"
    before = _peak_rss_mib(quantized_server)
    try:
        big = requests.post(
            f"{quantized_server.url}/generate", data=_chunks(256 << 20), headers=headers, timeout=60
        )
        assert big.status_code == 413
    except requests.ConnectionError:
        pass  # the server answered 413 and closed while the client was still sending
    assert _peak_rss_mib(quantized_server) - before < 64, "the server buffered a body past the limit"
    assert (
        quantized_server.post(
            "/generate", {"inputs": "hi", "parameters": {"max_new_tokens": 1}}, headers=headers
        ).status_code
        == 200
    )
