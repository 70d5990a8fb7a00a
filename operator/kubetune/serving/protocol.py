"""Wire formats of TGI's API: request models, error bodies, JSON and server-sent-event framing.

Requests are pydantic models that accept what TGI's serde structs accept (unknown fields are
ignored, types are checked); responses are built as plain dicts in TGI's field order and written
as compact JSON, because clients compare bytes (``data:{json}`` with no space, as axum's
``json_data`` writes it). Error wording copies TGI's router (``Input validation error: ...``).

Pure: no torch, no I/O, no clock.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from kubetune.serving.generation import Finished, Step, TokenInfo


class ApiError(Exception):
    """An error answered as TGI's ``{"error", "error_type"}`` body with ``status``.

    ``reason`` is the ``err`` label of ``tgi_request_failure`` (None: not counted as a failure).
    """

    def __init__(self, status: int, error_type: str, message: str, reason: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {"error": self.message, "error_type": self.error_type}


def validation_error(message: str) -> ApiError:
    return ApiError(422, "validation", f"Input validation error: {message}", "validation")


def overloaded() -> ApiError:
    return ApiError(429, "overloaded", "Model is overloaded", "overloaded")


def incomplete_generation() -> ApiError:
    return ApiError(500, "incomplete_generation", "Incomplete generation", "incomplete")


def generation_error(detail: str) -> ApiError:
    return ApiError(424, "generation", f"Request failed during generation: {detail}", "generation")


def template_error(detail: str) -> ApiError:
    return ApiError(422, "template_error", f"Template error: {detail}", "template")


def deserialize_error(exc: pydantic.ValidationError | ValueError) -> ApiError:
    """Bad JSON or wrong types: TGI's axum rejection text, as a TGI error body (422, not counted)."""
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        detail = f"{where}: {first['msg']}" if where else first["msg"]
    else:
        detail = str(exc)
    return ApiError(
        422, "validation", f"Failed to deserialize the JSON body into the target type: {detail}", None
    )


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Grammar(_Wire):
    type: str
    value: Any = None


class GenerateParameters(_Wire):
    best_of: int | None = Field(default=None, ge=0)
    temperature: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    do_sample: bool = False
    max_new_tokens: int | None = Field(default=None, ge=0, le=2**32 - 1)
    return_full_text: bool | None = None
    stop: list[str] = Field(default_factory=list)
    truncate: int | None = Field(default=None, ge=0)
    watermark: bool = False
    details: bool = False
    decoder_input_details: bool = False
    seed: int | None = Field(default=None, ge=0, le=2**64 - 1)
    top_n_tokens: int | None = Field(default=None, ge=0, le=2**32 - 1)
    grammar: Grammar | None = None
    adapter_id: str | None = None


def _default_parameters() -> GenerateParameters:
    # TGI: a body without "parameters" samples; "parameters": {} does not.
    return GenerateParameters(do_sample=True)


class GenerateRequest(_Wire):
    inputs: str
    parameters: GenerateParameters = Field(default_factory=_default_parameters)


class CompatGenerateRequest(GenerateRequest):
    stream: bool = False


class TextPart(_Wire):
    type: str
    text: str | None = None


class ChatMessage(_Wire):
    role: str
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: Any = None


class StreamOptions(_Wire):
    include_usage: bool = False


class ChatRequest(_Wire):
    model: str | None = None
    messages: list[ChatMessage]
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    logit_bias: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_completion_tokens: int | None = Field(default=None, ge=0)
    n: int | None = None
    seed: int | None = Field(default=None, ge=0, le=2**64 - 1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: Any = None
    tool_choice: Any = None
    response_format: Any = None


class CompletionRequest(_Wire):
    model: str | None = None
    prompt: str | list[str]
    max_tokens: int | None = Field(default=None, ge=0)
    temperature: float | None = None
    top_p: float | None = None
    stream: bool = False
    seed: int | None = Field(default=None, ge=0, le=2**64 - 1)
    suffix: str | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: str | list[str] | None = None


class TokenizeRequest(_Wire):
    inputs: str
    add_special_tokens: bool = True


def parse(model: type[pydantic.BaseModel], body: bytes) -> Any:
    """Body bytes to a request model, or :class:`ApiError` 422 as TGI's extractor would answer."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise deserialize_error(exc) from None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise deserialize_error(exc) from None


def f32(value: float) -> float | None:
    """A float32 logprob as serde writes it: the shortest decimal that round-trips in f32.

    NaN (the first prefill token has no logprob) becomes null, as in TGI.
    """
    if math.isnan(value):
        return None
    if math.isinf(value):
        return -3.4028234663852886e38 if value < 0 else 3.4028234663852886e38
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        candidate = float(f"{single:.{digits}g}")
        if struct.unpack("f", struct.pack("f", candidate))[0] == single:
            return candidate
    return float(single)


def dumps(obj: Any) -> str:
    """Compact JSON like serde_json: no spaces, UTF-8 kept as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(obj: Any) -> bytes:
    """One server-sent event as TGI writes it: ``data:{json}`` and a blank line, no space."""
    return f"data:{dumps(obj)}\n\n".encode()


SSE_DONE = b"data:[DONE]\n\n"
SSE_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}


# ---- TGI response bodies (field order as TGI's serde structs) ----------------------------------


def token(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "text": t.text, "logprob": f32(t.logprob), "special": t.special}


def prefill_token(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "text": t.text, "logprob": f32(t.logprob)}


def _sequence_fields(f: Finished) -> dict[str, Any]:
    out: dict[str, Any] = {
        "finish_reason": f.finish_reason.value,
        "generated_tokens": f.generated_tokens,
        "seed": f.seed,
        "prefill": [prefill_token(t) for t in f.prefill],
        "tokens": [token(t) for t in f.tokens],
    }
    if any(f.top_tokens):
        out["top_tokens"] = [[token(t) for t in step] for step in f.top_tokens]
    return out


def details(f: Finished, best_of: list[tuple[str, Finished]] | None = None) -> dict[str, Any]:
    out = _sequence_fields(f)
    if best_of:
        out["best_of_sequences"] = [
            {"generated_text": text, **_sequence_fields(seq)} for text, seq in best_of
        ]
    return out


def generate_response(
    text: str, f: Finished, with_details: bool, best_of: list[tuple[str, Finished]] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"generated_text": text}
    if with_details:
        out["details"] = details(f, best_of)
    return out


def stream_response(step: Step, generated_text: str | None, with_details: bool, top_n: int) -> dict[str, Any]:
    """One /generate_stream event; the last one (``step.finished``) carries the text and details."""
    out: dict[str, Any] = {"index": step.index, "token": token(step.token)}
    if top_n:
        out["top_tokens"] = [token(t) for t in step.top_tokens]
    out["generated_text"] = generated_text
    f = step.finished
    out["details"] = (
        {
            "finish_reason": f.finish_reason.value,
            "generated_tokens": f.generated_tokens,
            "seed": f.seed,
            "input_length": f.input_length,
        }
        if f is not None and with_details
        else None
    )
    return out
