"""The real ``openai`` client against ``kubetune serve``'s OpenAI-compatible routes."""

from __future__ import annotations

import openai
import pytest

from kubetune.testing.servers import Server

from .conftest import ADAPTER

MESSAGES = [{"role": "user", "content": "how do I reset a password"}]


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="-", max_retries=0, timeout=60)


def test_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="tgi", messages=MESSAGES, max_tokens=5, temperature=0)  # type: ignore[arg-type]
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("length", "stop")
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    if choice.finish_reason == "length":
        assert completion.usage.completion_tokens == 5


def test_streamed_chat_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="tgi", messages=MESSAGES, max_tokens=6, temperature=0)  # type: ignore[arg-type]
    chunks = list(
        client.chat.completions.create(
            model="tgi",
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    content_chunks = [c for c in chunks if c.choices]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    streamed = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    expected = plain.choices[0].message.content or ""
    assert expected.startswith(streamed) and set(expected[len(streamed) :]) <= {"\ufffd"}
    assert content_chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert plain.usage is not None and usage_chunk.usage.completion_tokens == plain.usage.completion_tokens


def test_completions_single_and_batch(client: openai.OpenAI) -> None:
    one = client.completions.create(model="tgi", prompt="reset a password", max_tokens=4, temperature=0)
    assert one.object == "text_completion"
    assert len(one.choices) == 1 and isinstance(one.choices[0].text, str)
    many = client.completions.create(
        model="tgi", prompt=["reset a password", "close an account"], max_tokens=4, temperature=0
    )
    assert [c.index for c in many.choices] == [0, 1]
    assert many.choices[0].text == one.choices[0].text


def test_streamed_completion(client: openai.OpenAI) -> None:
    plain = client.completions.create(model="tgi", prompt="reset a password", max_tokens=5, temperature=0)
    chunks = list(
        client.completions.create(
            model="tgi", prompt="reset a password", max_tokens=5, temperature=0, stream=True
        )
    )
    streamed = "".join(c.choices[0].text for c in chunks)
    expected = plain.choices[0].text
    assert expected.startswith(streamed) and set(expected[len(streamed) :]) <= {"\ufffd"}
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason


def test_models_lists_the_served_model(client: openai.OpenAI, tiny_model: object) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [str(tiny_model)]


def test_model_field_selects_the_adapter(client: openai.OpenAI) -> None:
    base = client.chat.completions.create(model="tgi", messages=MESSAGES, max_tokens=8, temperature=0)  # type: ignore[arg-type]
    tuned = client.chat.completions.create(model=ADAPTER, messages=MESSAGES, max_tokens=8, temperature=0)  # type: ignore[arg-type]
    assert tuned.model == ADAPTER
    assert tuned.choices[0].message.content != base.choices[0].message.content


def test_unknown_model_is_refused_not_served_by_the_base_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model="no-such-adapter", messages=MESSAGES, max_tokens=4)  # type: ignore[arg-type]
    error = caught.value.response.json()
    assert error["error_type"] == "validation"
    assert "`no-such-adapter` is not loaded" in error["error"] and f"`{ADAPTER}`" in error["error"]
    with pytest.raises(openai.UnprocessableEntityError):
        client.completions.create(model="no-such-adapter", prompt="hi", max_tokens=4)
