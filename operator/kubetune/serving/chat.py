"""TGI's OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/models.

Each request is mapped onto TGI's generate parameters the way TGI maps it: ``model`` "tgi", the
served model id or absent selects the base model and any other value is the ``adapter_id``;
``presence_penalty`` becomes ``repetition_penalty = p + 2``; temperature 0 means greedy, an
absent temperature samples. Streams are ``chat.completion.chunk`` / ``text_completion`` events
then ``data:[DONE]``. Tools, response_format, logit_bias and n > 1 are refused (422), not ignored.
Must not touch the model; generation goes through :class:`inference.Inference`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response

from kubetune.serving import protocol
from kubetune.serving import runtime as routes
from kubetune.serving.generation import Finished, Step, TokenInfo
from kubetune.serving.inference import Outcome, headers

_BASE_NAMES = frozenset({"", "tgi"})


def adapter_for(model: str | None, model_id: str) -> str | None:
    if model is None or model in _BASE_NAMES or model == model_id:
        return None
    return model


def _stops(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def _sampling(temperature: float | None) -> tuple[bool, float | None]:
    if temperature is not None and temperature == 0.0:
        return False, None
    return True, temperature


def chat_parameters(body: protocol.ChatRequest, model_id: str) -> protocol.GenerateParameters:
    if body.n not in (None, 1):
        raise protocol.validation_error("`n` > 1 is not supported by kubetune serve")
    if body.tools or (body.tool_choice not in (None, "none")):
        raise protocol.ApiError(
            422, "tool_error", "Tool error: tools are not supported by kubetune serve", "validation"
        )
    if body.response_format is not None:
        raise protocol.validation_error("`response_format` is not supported by kubetune serve")
    if body.logit_bias:
        raise protocol.validation_error("`logit_bias` is not supported by kubetune serve")
    do_sample, temperature = _sampling(body.temperature)
    repetition = body.presence_penalty + 2.0 if body.presence_penalty is not None else body.repetition_penalty
    return protocol.GenerateParameters(
        do_sample=do_sample,
        temperature=temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=_stops(body.stop),
        max_new_tokens=body.max_completion_tokens
        if body.max_completion_tokens is not None
        else body.max_tokens,
        repetition_penalty=repetition,
        frequency_penalty=body.frequency_penalty,
        top_n_tokens=(body.top_logprobs or None) if body.logprobs else None,
        details=True,
        adapter_id=adapter_for(body.model, model_id),
    )


def completion_parameters(body: protocol.CompletionRequest, model_id: str) -> protocol.GenerateParameters:
    do_sample, temperature = _sampling(body.temperature)
    return protocol.GenerateParameters(
        do_sample=do_sample,
        temperature=temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=_stops(body.stop),
        max_new_tokens=body.max_tokens,
        repetition_penalty=body.repetition_penalty,
        frequency_penalty=body.frequency_penalty,
        details=True,
        adapter_id=adapter_for(body.model, model_id),
    )


def messages(body: protocol.ChatRequest) -> list[dict[str, str]]:
    out = []
    for message in body.messages:
        content = message.content
        if isinstance(content, list):
            if any(part.type != "text" for part in content):
                raise protocol.validation_error("only text content parts are supported by kubetune serve")
            content = "".join(part.text or "" for part in content)
        out.append({"role": message.role, "content": content or ""})
    return out


def _logprobs(tokens: list[TokenInfo], top: list[list[TokenInfo]]) -> dict[str, Any]:
    content = []
    for n, t in enumerate(tokens):
        alternatives = top[n] if n < len(top) else []
        content.append(
            {
                "token": t.text,
                "logprob": protocol.f32(t.logprob),
                "top_logprobs": [{"token": a.text, "logprob": protocol.f32(a.logprob)} for a in alternatives],
            }
        )
    return {"content": content}


def _usage(f: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": f.input_length,
        "completion_tokens": f.generated_tokens,
        "total_tokens": f.input_length + f.generated_tokens,
    }


class Handlers:
    def __init__(self, runtime: routes.Runtime) -> None:
        self.runtime = runtime
        self.model_id = runtime.engine.model_id

    def _head(self, kind: str, model: str | None) -> dict[str, Any]:
        return {
            "object": kind,
            "id": "",
            "created": int(time.time()),
            "model": model if adapter_for(model, self.model_id) else self.model_id,
            "system_fingerprint": self.runtime.system_fingerprint,
        }

    # ---- /v1/chat/completions ----------------------------------------------------------------

    async def chat(self, raw: bytes) -> Response:
        try:
            body = protocol.parse(protocol.ChatRequest, raw)
            params = chat_parameters(body, self.model_id)
        except protocol.ApiError as exc:
            return routes.error_response(exc)
        if body.stream:
            return routes.sse_response(self._chat_stream(body, params), self.runtime)
        inference = self.runtime.inference
        try:
            timing = inference.begin()
            with inference.permit(params.adapter_id):
                prompt = self._prompt(body)
                request = inference.validate(prompt, params, timing, add_special_tokens=False)
                outcome = await inference.complete(request, timing)
                inference.succeeded(outcome, "chat_completions")
        except protocol.ApiError as exc:
            return routes.error_response(exc)
        f = outcome.finished
        content = {
            **self._head("chat.completion", body.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f.generated_text},
                    "logprobs": _logprobs(f.tokens, f.top_tokens) if body.logprobs else None,
                    "finish_reason": f.finish_reason.openai(),
                }
            ],
            "usage": _usage(f),
        }
        return routes.json_response(content, extra=headers(outcome, self.runtime.compute_type, len(prompt)))

    def _prompt(self, body: protocol.ChatRequest) -> str:
        try:
            return self.runtime.engine.chat_prompt(messages(body))
        except protocol.ApiError:
            raise
        except Exception as exc:
            raise protocol.template_error(
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            ) from None

    async def _chat_stream(
        self, body: protocol.ChatRequest, params: protocol.GenerateParameters
    ) -> AsyncIterator[bytes]:
        inference = self.runtime.inference
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        try:
            timing = inference.begin()
            with inference.permit(params.adapter_id):
                prompt = self._prompt(body)
                request = inference.validate(prompt, params, timing, stream=True, add_special_tokens=False)
                async for step in inference.steps(request, timing):
                    f = step.finished
                    if f is not None:
                        inference.succeeded(Outcome(f, timing, request), "chat_completions")
                    delta = {"role": "assistant", "content": "" if step.token.special else step.token.text}
                    chunk = {
                        **self._head("chat.completion.chunk", body.model),
                        "choices": [
                            {
                                "index": 0,
                                "delta": delta,
                                "logprobs": _logprobs([step.token], [step.top_tokens])
                                if body.logprobs
                                else None,
                                "finish_reason": f.finish_reason.openai() if f is not None else None,
                            }
                        ],
                        "usage": None,
                    }
                    yield protocol.sse(chunk)
                    if f is not None and include_usage:
                        yield protocol.sse(
                            {
                                **self._head("chat.completion.chunk", body.model),
                                "choices": [],
                                "usage": _usage(f),
                            }
                        )
        except protocol.ApiError as exc:
            yield protocol.sse(exc.body())
            return
        yield protocol.SSE_DONE

    # ---- /v1/completions ---------------------------------------------------------------------

    async def completions(self, raw: bytes) -> Response:
        try:
            body = protocol.parse(protocol.CompletionRequest, raw)
            params = completion_parameters(body, self.model_id)
            prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
            limit = self.runtime.config.max_client_batch_size
            if len(prompts) > limit:
                raise protocol.validation_error(
                    f"Number of prompts must be <= {limit}. Given: {len(prompts)}"
                )
            if not prompts:
                raise protocol.validation_error("`prompt` cannot be empty")
        except protocol.ApiError as exc:
            return routes.error_response(exc)
        if body.stream:
            return routes.sse_response(self._completion_stream(body, params, prompts), self.runtime)
        try:
            outcomes = await asyncio.gather(*(self._complete_one(p, params) for p in prompts))
        except protocol.ApiError as exc:
            return routes.error_response(exc)
        choices = [
            {
                "index": n,
                "text": o.finished.generated_text,
                "logprobs": None,
                "finish_reason": o.finished.finish_reason.openai(),
            }
            for n, o in enumerate(outcomes)
        ]
        prompt_tokens = sum(o.finished.input_length for o in outcomes)
        completion_tokens = sum(o.finished.generated_tokens for o in outcomes)
        content = {
            **self._head("text_completion", body.model),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return routes.json_response(content)

    async def _complete_one(self, prompt: str, params: protocol.GenerateParameters) -> Outcome:
        inference = self.runtime.inference
        timing = inference.begin()
        with inference.permit(params.adapter_id):
            request = inference.validate(prompt, params, timing)
            outcome = await inference.complete(request, timing)
            inference.succeeded(outcome, "completions")
        return outcome

    async def _stream_one(
        self,
        index: int,
        prompt: str,
        params: protocol.GenerateParameters,
        out: asyncio.Queue[tuple[int, Step] | None],
    ) -> None:
        inference = self.runtime.inference
        try:
            timing = inference.begin()
            with inference.permit(params.adapter_id):
                request = inference.validate(prompt, params, timing, stream=True)
                async for step in inference.steps(request, timing):
                    if step.finished is not None:
                        inference.succeeded(Outcome(step.finished, timing, request), "completions")
                    await out.put((index, step))
        finally:
            await out.put(None)

    async def _completion_stream(
        self, body: protocol.CompletionRequest, params: protocol.GenerateParameters, prompts: list[str]
    ) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[tuple[int, Step] | None] = asyncio.Queue()
        tasks = [asyncio.create_task(self._stream_one(n, p, params, queue)) for n, p in enumerate(prompts)]
        try:
            running = len(tasks)
            while running:
                item = await queue.get()
                if item is None:
                    running -= 1
                    continue
                index, step = item
                f = step.finished
                choice = {
                    "index": index,
                    "text": "" if step.token.special else step.token.text,
                    "logprobs": None,
                    "finish_reason": f.finish_reason.openai() if f is not None else None,
                }
                yield protocol.sse({**self._head("text_completion", body.model), "choices": [choice]})
            for task in tasks:
                task.result()  # re-raises the first error of a prompt
        except protocol.ApiError as exc:
            yield protocol.sse(exc.body())
            return
        finally:
            for task in tasks:
                task.cancel()
        yield protocol.SSE_DONE

    # ---- /v1/models ----------------------------------------------------------------------------

    def models(self) -> Response:
        return routes.json_response(
            {
                "object": "list",
                "data": [{"id": self.model_id, "object": "model", "created": 0, "owned_by": self.model_id}],
            }
        )


def register(app: FastAPI, runtime: routes.Runtime) -> Handlers:
    """Adds the OpenAI routes; returns their handlers (the /invocations route dispatches to them)."""
    handlers = Handlers(runtime)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await handlers.chat(await request.body())

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await handlers.completions(await request.body())

    @app.get("/v1/models")
    async def models() -> Response:
        return handlers.models()

    return handlers
