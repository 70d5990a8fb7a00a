"""--api-key and --payload-limit (on the quantized server, which sets both). Chunked bodies past
the limit: tests/integration/security/test_serving_request_bodies.py."""

from __future__ import annotations

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
