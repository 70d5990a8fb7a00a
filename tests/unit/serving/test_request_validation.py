"""TGI's validation rules, order and wording, plus kubetune's refusal of unknown adapters."""

from __future__ import annotations

import pytest

from kubetune.serving import protocol, validation

RULES = validation.Rules(max_input_tokens=10, max_total_tokens=20, adapters=("support", "billing"))


def tokenize(text: str, add_special_tokens: bool) -> list[int]:
    return ([1] if add_special_tokens else []) + [len(w) for w in text.split()]


def check(inputs: str = "a b c", stream: bool = False, **parameters: object) -> validation.GenerationInput:
    params = protocol.GenerateParameters.model_validate(parameters)
    return validation.validate(inputs, params, RULES, tokenize, stream=stream)


def message(inputs: str = "a b c", stream: bool = False, **parameters: object) -> str:
    with pytest.raises(protocol.ApiError) as caught:
        check(inputs, stream, **parameters)
    assert caught.value.status == 422 and caught.value.error_type == "validation"
    assert caught.value.reason == "validation"
    return caught.value.message


def test_max_new_tokens_defaults_to_the_rest_of_the_budget() -> None:
    request = check()
    assert request.input_ids == [1, 1, 1, 1]
    assert request.max_new_tokens == 16


def test_total_budget_is_checked_before_input_length() -> None:
    assert message("a " * 30, max_new_tokens=5) == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 20. Given: 31 `inputs` tokens and 5 `max_new_tokens`"
    )
    assert (
        message("a " * 12, max_new_tokens=2)
        == "Input validation error: `inputs` must have less than 10 tokens. Given: 13"
    )


def test_truncate_keeps_the_last_tokens() -> None:
    assert check("a bb ccc dddd", truncate=2).input_ids == [3, 4]
    assert (
        message(truncate=11)
        == "Input validation error: `truncate` must be strictly positive and less than 10. Given: 11"
    )


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"temperature": 0.0}, "`temperature` must be strictly positive"),
        ({"repetition_penalty": 0.0}, "`repetition_penalty` must be strictly positive"),
        ({"frequency_penalty": 2.5}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"top_p": 0.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"typical_p": 1.0}, "`typical_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["1", "2", "3", "4", "5"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"top_n_tokens": 6}, "`top_n_tokens` must be >= 0 and <= 5. Given: 6"),
        ({"best_of": 3, "do_sample": True}, "`best_of` must be > 0 and <= 2. Given: 3"),
        ({"best_of": 2}, "you must use sampling when `best_of` is > 1"),
        ({"best_of": 2, "do_sample": True, "seed": 1}, "`seed` must not be set when `best_of` > 1"),
        ({"grammar": {"type": "json", "value": {}}}, "grammar is not supported"),
        ({"watermark": True}, "`watermark` is not supported by kubetune serve"),
    ],
)
def test_parameter_rules(parameters: dict[str, object], expected: str) -> None:
    assert message(**parameters) == f"Input validation error: {expected}"


def test_streaming_refuses_best_of_and_prefill_details() -> None:
    assert message(stream=True, best_of=2, do_sample=True).endswith(
        "`best_of` != 1 is not supported when streaming tokens"
    )
    assert message(stream=True, decoder_input_details=True).endswith(
        "`decoder_input_details` == true is not supported when streaming tokens"
    )


def test_empty_inputs_are_refused() -> None:
    assert message("") == "Input validation error: `inputs` cannot be empty"


def test_unknown_adapter_names_the_loaded_ones() -> None:
    assert message(adapter_id="suport") == (
        "Input validation error: adapter `suport` is not loaded; loaded adapters: `billing`, `support`"
    )
    assert check(adapter_id="support").adapter == "support"
    assert check(adapter_id=None).adapter is None


def test_unknown_adapter_without_any_adapters_says_how_to_load_one() -> None:
    with pytest.raises(protocol.ApiError, match="start it with --lora-adapters"):
        validation.check_adapter("x", ())


def test_warpers_make_tgi_sample_even_without_do_sample() -> None:
    assert check(top_k=5).sampling.sampling
    assert not check().sampling.sampling
    assert check().sampling.plain_greedy
    assert check(seed=42, do_sample=True).sampling.seed == 42


def test_omitted_parameters_sample_but_empty_parameters_do_not() -> None:
    assert protocol.GenerateRequest.model_validate({"inputs": "x"}).parameters.do_sample is True
    assert (
        protocol.GenerateRequest.model_validate({"inputs": "x", "parameters": {}}).parameters.do_sample
        is False
    )


def test_bad_json_and_types_give_a_deserialize_error() -> None:
    with pytest.raises(protocol.ApiError, match=r"^Failed to deserialize the JSON body") as caught:
        protocol.parse(protocol.GenerateRequest, b'{"inputs": 3}')
    assert caught.value.reason is None  # like TGI, not counted as a request
    with pytest.raises(protocol.ApiError, match=r"parameters\.seed"):
        protocol.parse(protocol.GenerateRequest, b'{"inputs": "x", "parameters": {"seed": -1}}')
