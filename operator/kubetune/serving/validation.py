"""Request validation with TGI's rules, order and wording (its router's ``validation.rs``).

Turns ``inputs`` + :class:`protocol.GenerateParameters` into a :class:`generation.GenerationInput`
or raises a 422 :class:`protocol.ApiError`. Two deliberate additions: an ``adapter_id`` that is
not loaded is refused (TGI silently serves the base model, which hides a broken rollout), and
``watermark`` is refused rather than ignored. Pure apart from the tokenizer callable it is given.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Collection

from kubetune.serving import protocol
from kubetune.serving.generation import GenerationInput, Sampling

Tokenize = Callable[[str, bool], list[int]]


@dataclasses.dataclass(frozen=True)
class Rules:
    max_input_tokens: int
    max_total_tokens: int
    max_stop_sequences: int = 4
    max_top_n_tokens: int = 5
    max_best_of: int = 2
    adapters: Collection[str] = ()


def _fail(message: str) -> protocol.ApiError:
    return protocol.validation_error(message)


def check_adapter(adapter_id: str | None, adapters: Collection[str]) -> str | None:
    """The adapter a request names, or None for the base model. Unknown ids are an error."""
    if adapter_id is None or adapter_id == "":
        return None
    if adapter_id in adapters:
        return adapter_id
    if adapters:
        loaded = ", ".join(f"`{name}`" for name in sorted(adapters))
        raise _fail(f"adapter `{adapter_id}` is not loaded; loaded adapters: {loaded}")
    raise _fail(
        f"adapter `{adapter_id}` is not loaded; this server has no adapters (start it with --lora-adapters)"
    )


def best_of(params: protocol.GenerateParameters, rules: Rules, *, stream: bool) -> int:
    value = 1 if params.best_of is None else params.best_of
    if rules.max_best_of == 1 and value != 1:
        raise _fail("`best_of` != 1 is not allowed for this endpoint")
    if value == 0 or value > rules.max_best_of:
        raise _fail(f"`best_of` must be > 0 and <= {rules.max_best_of}. Given: {value}")
    if value > 1 and stream:
        raise _fail("`best_of` != 1 is not supported when streaming tokens")
    return value


def validate(
    inputs: str,
    params: protocol.GenerateParameters,
    rules: Rules,
    tokenize: Tokenize,
    *,
    stream: bool = False,
    add_special_tokens: bool = True,
) -> GenerationInput:
    n_best = best_of(params, rules, stream=stream)
    sampling = (
        params.do_sample
        or params.temperature is not None
        or params.top_k is not None
        or params.top_p is not None
        or params.typical_p is not None
    )
    if n_best > 1 and not sampling:
        raise _fail("you must use sampling when `best_of` is > 1")
    if params.temperature is not None and params.temperature <= 0.0:
        raise _fail("`temperature` must be strictly positive")
    if params.repetition_penalty is not None and params.repetition_penalty <= 0.0:
        raise _fail("`repetition_penalty` must be strictly positive")
    if params.frequency_penalty is not None and not -2.0 <= params.frequency_penalty <= 2.0:
        raise _fail("`frequency_penalty` must be >= -2.0 and <= 2.0")
    if params.top_p is not None and not 0.0 < params.top_p < 1.0:
        raise _fail("`top_p` must be > 0.0 and < 1.0")
    if params.typical_p is not None and not 0.0 < params.typical_p < 1.0:
        raise _fail("`typical_p` must be > 0.0 and < 1.0")
    if params.top_k is not None and params.top_k <= 0:
        raise _fail("`top_k` must be strictly positive")
    if params.max_new_tokens == 0:
        raise _fail("`max_new_tokens` must be strictly positive")
    if len(params.stop) > rules.max_stop_sequences:
        raise _fail(
            f"`stop` supports up to {rules.max_stop_sequences} stop sequences. Given: {len(params.stop)}"
        )
    if params.seed is not None and n_best > 1:
        raise _fail("`seed` must not be set when `best_of` > 1")
    seed = random.getrandbits(64) if params.seed is None else params.seed
    top_n = params.top_n_tokens or 0
    if top_n and rules.max_top_n_tokens == 0:
        raise _fail(
            "`top_n_tokens` != 0 is not allowed for this endpoint, because `--max-top-n-tokens` is set to 0"
        )
    if top_n > rules.max_top_n_tokens:
        raise _fail(f"`top_n_tokens` must be >= 0 and <= {rules.max_top_n_tokens}. Given: {top_n}")
    if stream and params.decoder_input_details:
        raise _fail("`decoder_input_details` == true is not supported when streaming tokens")
    if not inputs:
        raise _fail("`inputs` cannot be empty")
    if params.truncate is not None and (params.truncate == 0 or params.truncate > rules.max_input_tokens):
        raise _fail(
            f"`truncate` must be strictly positive and less than {rules.max_input_tokens}. Given: {params.truncate}"
        )
    if params.grammar is not None:
        raise _fail("grammar is not supported")
    if params.watermark:
        raise _fail("`watermark` is not supported by kubetune serve")
    adapter = check_adapter(params.adapter_id, rules.adapters)

    try:
        input_ids = tokenize(inputs, add_special_tokens)
    except Exception as exc:  # the tokenizer's own message is the useful part
        raise _fail(f"tokenizer error {exc}") from None
    if params.truncate is not None:
        input_ids = input_ids[-params.truncate :]
    input_length = len(input_ids)
    if params.max_new_tokens is not None:
        max_new_tokens = params.max_new_tokens
    else:
        max_new_tokens = max(0, rules.max_total_tokens - input_length)
    if input_length + max_new_tokens > rules.max_total_tokens:
        raise _fail(
            f"`inputs` tokens + `max_new_tokens` must be <= {rules.max_total_tokens}. "
            f"Given: {input_length} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
        )
    if input_length > rules.max_input_tokens:
        raise _fail(f"`inputs` must have less than {rules.max_input_tokens} tokens. Given: {input_length}")
    if input_length == 0:
        raise _fail("`inputs` cannot be empty")

    return GenerationInput(
        input_ids=input_ids,
        max_new_tokens=max_new_tokens,
        sampling=Sampling(
            do_sample=params.do_sample,
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            typical_p=params.typical_p,
            repetition_penalty=params.repetition_penalty,
            frequency_penalty=params.frequency_penalty,
            seed=seed,
        ),
        stop=[s for s in params.stop if s],
        top_n_tokens=top_n,
        decoder_input_details=params.decoder_input_details,
        adapter=adapter,
    )
