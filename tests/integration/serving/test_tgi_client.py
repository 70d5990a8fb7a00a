"""The real ``text_generation`` clients (sync and async) against ``kubetune serve``."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from kubetune.testing.servers import Server

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from text_generation import AsyncClient, Client
    from text_generation.errors import ValidationError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the client is deprecated upstream

PROMPT = "customers ask how to reset a password"


def _joined(tokens: list) -> str:  # type: ignore[type-arg]
    return "".join(t.text for t in tokens if not t.special)


def _assert_stream_text_matches(joined: str, generated: str) -> None:
    # Incremental detokenization may hold back a trailing incomplete UTF-8 sequence, which the
    # final decode shows as U+FFFD; everything else must be identical.
    assert generated.startswith(joined)
    assert set(generated[len(joined) :]) <= {"\ufffd"}


@pytest.fixture(scope="module")
def client(server: Server) -> Client:
    return Client(server.url, timeout=60)


def test_generate_returns_details_for_every_token(client: Client) -> None:
    response = client.generate(PROMPT, max_new_tokens=6)
    details = response.details
    assert details.generated_tokens == len(details.tokens)
    assert details.finish_reason.value in ("length", "eos_token")
    if details.finish_reason.value == "length":
        assert details.generated_tokens == 6
    assert details.seed is None  # greedy
    assert details.prefill == []
    assert all(t.logprob is not None and t.logprob <= 0 for t in details.tokens)


def test_greedy_generation_is_deterministic(client: Client) -> None:
    first = client.generate(PROMPT, max_new_tokens=8)
    second = client.generate(PROMPT, max_new_tokens=8)
    assert first.generated_text == second.generated_text
    assert [t.id for t in first.details.tokens] == [t.id for t in second.details.tokens]


def test_stream_tokens_add_up_to_the_final_text(client: Client) -> None:
    events = list(client.generate_stream(PROMPT, max_new_tokens=8))
    assert [e.token.id for e in events] == [
        t.id for t in client.generate(PROMPT, max_new_tokens=8).details.tokens
    ]
    assert all(e.generated_text is None and e.details is None for e in events[:-1])
    last = events[-1]
    assert last.generated_text is not None and last.details is not None
    assert last.details.generated_tokens == len(events)
    _assert_stream_text_matches(_joined([e.token for e in events]), last.generated_text)


def test_seeded_sampling_is_reproducible_and_reports_the_seed(client: Client) -> None:
    first = client.generate(PROMPT, max_new_tokens=8, do_sample=True, seed=42, top_k=50)
    second = client.generate(PROMPT, max_new_tokens=8, do_sample=True, seed=42, top_k=50)
    assert first.generated_text == second.generated_text
    assert first.details.seed == 42


def test_stop_sequence_ends_the_generation(client: Client) -> None:
    reference = client.generate(PROMPT, max_new_tokens=12)
    texts = [t.text for t in reference.details.tokens]
    stop = next((t for t in texts[2:] if t.strip()), None)
    if stop is None:
        pytest.skip("the tiny model produced no usable stop text")
    response = client.generate(PROMPT, max_new_tokens=12, stop_sequences=[stop])
    assert response.details.finish_reason.value == "stop_sequence"
    assert response.generated_text.endswith(stop)
    assert response.details.generated_tokens < 12


def test_return_full_text_prepends_the_prompt(client: Client) -> None:
    plain = client.generate(PROMPT, max_new_tokens=4)
    full = client.generate(PROMPT, max_new_tokens=4, return_full_text=True)
    assert full.generated_text == PROMPT + plain.generated_text


def test_decoder_input_details_and_top_tokens(client: Client) -> None:
    response = client.generate(PROMPT, max_new_tokens=3, decoder_input_details=True, top_n_tokens=3)
    prefill = response.details.prefill
    assert len(prefill) > 1
    assert prefill[0].logprob is None and all(t.logprob is not None for t in prefill[1:])
    assert response.details.top_tokens is not None
    assert [len(step) for step in response.details.top_tokens] == [3, 3, 3]
    # greedy: the chosen token is the most likely one
    assert [step[0].id for step in response.details.top_tokens] == [t.id for t in response.details.tokens]


def test_best_of_returns_the_other_sequences(client: Client) -> None:
    response = client.generate(PROMPT, max_new_tokens=4, do_sample=True, best_of=2)
    assert response.details.best_of_sequences is not None
    assert len(response.details.best_of_sequences) == 1


def test_validation_errors_raise_the_clients_validation_error(client: Client) -> None:
    with pytest.raises(ValidationError, match="`inputs` tokens \\+ `max_new_tokens` must be <= 128"):
        client.generate(PROMPT, max_new_tokens=500)


def test_async_client_generate_and_stream(server: Server) -> None:
    async def run() -> tuple[str, list[int], str | None]:
        client = AsyncClient(server.url, timeout=60)
        response = await client.generate(PROMPT, max_new_tokens=6)
        ids = []
        final = None
        async for event in client.generate_stream(PROMPT, max_new_tokens=6):
            ids.append(event.token.id)
            if event.details is not None:
                final = event.generated_text
        assert response.details.tokens
        return response.generated_text, ids, final

    text, ids, final = asyncio.run(run())
    assert final == text
    assert len(ids) >= 1
