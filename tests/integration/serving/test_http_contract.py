"""Byte-level parts of TGI's HTTP contract that clients and probes depend on."""

from __future__ import annotations

import json
import re

import requests

from kubetune.testing.servers import Server

from .conftest import MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS

PROMPT = "how to change an email address"
TIMING_HEADERS = ("x-total-time", "x-validation-time", "x-queue-time", "x-inference-time", "x-time-per-token")


def test_generate_stream_uses_tgis_framing(server: Server) -> None:
    response = server.post(
        "/generate_stream", {"inputs": PROMPT, "parameters": {"max_new_tokens": 4, "details": True}}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-accel-buffering"] == "no"
    raw = response.content.decode()
    events = raw.split("\n\n")
    assert events[-1] == ""  # every event ends with a blank line
    events = events[:-1]
    assert all(re.fullmatch(r"data:\{.*\}", e) for e in events), raw  # no space after the colon
    assert "[DONE]" not in raw
    parsed = [json.loads(e[len("data:") :]) for e in events]
    assert [p["index"] for p in parsed] == list(range(1, len(parsed) + 1))
    assert list(parsed[0]) == ["index", "token", "generated_text", "details"]
    assert list(parsed[-1]["details"]) == ["finish_reason", "generated_tokens", "seed", "input_length"]


def test_compat_route_returns_an_array_or_a_stream(server: Server) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 3}}
    plain = server.post("/", body)
    assert plain.status_code == 200 and isinstance(plain.json(), list) and "generated_text" in plain.json()[0]
    streamed = server.post("/", {**body, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.startswith("data:{")


def test_chat_stream_ends_with_done(server: Server) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        "stream": True,
        "temperature": 0,
    }
    raw = server.post("/v1/chat/completions", body).text
    assert raw.endswith("data:[DONE]\n\n")
    first = json.loads(raw.split("\n\n")[0][len("data:") :])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"


def test_generate_sets_tgis_headers(server: Server) -> None:
    response = server.generate(PROMPT, max_new_tokens=3)
    assert response.headers["x-compute-type"]
    for name in (*TIMING_HEADERS, "x-prompt-tokens", "x-generated-tokens", "x-compute-characters"):
        assert response.headers[name].isdigit(), name
    assert float(response.headers["x-compute-time"]) >= 0
    assert response.headers["x-generated-tokens"] == "3"
    assert response.headers["x-compute-characters"] == str(len(PROMPT))
    assert "details" not in response.json()


def test_info_health_and_models(server: Server, tiny_model: object) -> None:
    info = requests.get(f"{server.url}/info", timeout=10).json()
    assert list(info) == [
        "model_id", "model_sha", "model_pipeline_tag", "max_concurrent_requests", "max_best_of",
        "max_stop_sequences", "max_input_tokens", "max_total_tokens", "validation_workers",
        "max_client_batch_size", "router", "version", "sha", "docker_label",
    ]  # fmt: skip
    assert info["model_id"] == str(tiny_model)
    assert (info["max_input_tokens"], info["max_total_tokens"]) == (MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS)
    assert info["router"] == "text-generation-router"
    health = requests.get(f"{server.url}/health", timeout=10)
    assert health.status_code == 200 and health.content == b""
    models = requests.get(f"{server.url}/v1/models", timeout=10).json()
    assert models == {
        "object": "list",
        "data": [{"id": str(tiny_model), "object": "model", "created": 0, "owned_by": str(tiny_model)}],
    }


def test_tokenize_returns_ids_and_offsets(server: Server) -> None:
    pieces = server.post("/tokenize", {"inputs": PROMPT}).json()
    assert pieces and all(set(p) == {"id", "text", "start", "stop"} for p in pieces)
    assert "".join(p["text"] for p in pieces) == PROMPT
