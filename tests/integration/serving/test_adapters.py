"""LoRA adapters: chosen per request, really applied, batched correctly, unknown ids refused."""

from __future__ import annotations

import concurrent.futures

from kubetune.testing.servers import Server

from .conftest import ADAPTER, metric_value

PROMPT = "customers ask how to close an account"


def _text(server: Server, prompt: str, adapter: str | None, tokens: int = 10) -> str:
    parameters: dict[str, object] = {"max_new_tokens": tokens}
    if adapter:
        parameters["adapter_id"] = adapter
    response = server.post("/generate", {"inputs": prompt, "parameters": parameters})
    assert response.status_code == 200, response.text
    return str(response.json()["generated_text"])


def test_adapter_changes_the_output(server: Server) -> None:
    assert _text(server, PROMPT, ADAPTER) != _text(server, PROMPT, None)


def test_unknown_adapter_is_a_422_naming_the_loaded_ones(server: Server) -> None:
    before = metric_value(server.metrics(), 'tgi_request_failure{err="validation"}')
    response = server.generate(PROMPT, max_new_tokens=4, adapter_id="suport")
    assert response.status_code == 422
    assert response.json() == {
        "error": f"Input validation error: adapter `suport` is not loaded; loaded adapters: `{ADAPTER}`",
        "error_type": "validation",
    }
    assert metric_value(server.metrics(), 'tgi_request_failure{err="validation"}') == before + 1


def test_unknown_adapter_in_a_stream_is_an_error_event(server: Server) -> None:
    response = server.post("/generate_stream", {"inputs": PROMPT, "parameters": {"adapter_id": "nope"}})
    assert response.text.startswith('data:{"error":"Input validation error: adapter `nope` is not loaded')
    assert '"error_type":"validation"' in response.text


def test_concurrent_mixed_adapter_requests_match_sequential_answers(server: Server) -> None:
    prompts = [f"{PROMPT} {w}" for w in ("today", "now", "please", "again", "quickly", "later")]
    jobs = [(p, a) for p in prompts for a in (None, ADAPTER)]
    sequential = [_text(server, p, a) for p, a in jobs]
    before = server.metrics()
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        concurrent_answers = list(pool.map(lambda job: _text(server, *job), jobs))
    after = server.metrics()
    assert concurrent_answers == sequential
    # and they were batched: fewer batches than requests (12 requests, 2 adapters)
    batches = metric_value(after, "tgi_batch_next_size_count") - metric_value(
        before, "tgi_batch_next_size_count"
    )
    assert batches < len(jobs)
