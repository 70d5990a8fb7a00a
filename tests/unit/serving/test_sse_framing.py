"""TGI's wire framing: compact JSON, `data:` events without a space, float32 logprobs."""

from __future__ import annotations

import json

from kubetune.serving import protocol
from kubetune.serving.generation import Finished, FinishReason, Step, TokenInfo


def _finished() -> Finished:
    token = TokenInfo(15, " a", -0.4, False)
    return Finished(" a", FinishReason.LENGTH, 1, None, 3, [token], [[]], [])


def test_event_is_data_colon_json_and_a_blank_line() -> None:
    assert protocol.sse({"a": 1, "b": "x y"}) == b'data:{"a":1,"b":"x y"}\n\n'


def test_chat_streams_end_with_done_without_a_space() -> None:
    assert protocol.SSE_DONE == b"data:[DONE]\n\n"


def test_token_event_matches_tgis_example_byte_for_byte() -> None:
    step = Step(index=1, token=TokenInfo(15, " a", -0.4, False), top_tokens=[])
    event = protocol.sse(protocol.stream_response(step, None, with_details=True, top_n=0))
    assert event == (
        b'data:{"index":1,"token":{"id":15,"text":" a","logprob":-0.4,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
    )


def test_last_event_carries_text_and_stream_details() -> None:
    step = Step(index=1, token=TokenInfo(15, " a", -0.4), top_tokens=[], finished=_finished())
    body = protocol.stream_response(step, " a", with_details=True, top_n=0)
    assert body["generated_text"] == " a"
    assert body["details"] == {
        "finish_reason": "length",
        "generated_tokens": 1,
        "seed": None,
        "input_length": 3,
    }


def test_top_tokens_appear_only_when_requested() -> None:
    step = Step(index=1, token=TokenInfo(1, "x", -1.0), top_tokens=[TokenInfo(1, "x", -1.0)])
    assert "top_tokens" not in protocol.stream_response(step, None, True, top_n=0)
    assert list(protocol.stream_response(step, None, True, top_n=1)) == [
        "index",
        "token",
        "top_tokens",
        "generated_text",
        "details",
    ]


def test_generate_details_omit_empty_top_tokens_and_absent_best_of() -> None:
    body = protocol.generate_response(" a", _finished(), with_details=True)
    assert list(body["details"]) == ["finish_reason", "generated_tokens", "seed", "prefill", "tokens"]
    assert "details" not in protocol.generate_response(" a", _finished(), with_details=False)


def test_logprobs_are_written_as_float32_shortest_decimals() -> None:
    assert protocol.f32(-0.4000000059604645) == -0.4
    assert json.dumps(protocol.f32(-5.740960597991943)) == "-5.7409606"
    assert protocol.f32(float("nan")) is None


def test_json_keeps_unicode_and_has_no_spaces() -> None:
    assert protocol.dumps({"text": "é\ufffd", "n": [1, 2]}) == '{"text":"é\ufffd","n":[1,2]}'
