"""The model side of the runtime: loads a base model, its LoRA adapters and tokenizer, and decodes.

:meth:`Engine.generate` runs one batch that shares an adapter: prompts are left-padded into one
prefill forward, then decoded step by step on the KV cache; each sequence has its own sampling
parameters, seed, stop rules and budget, and finished (or cancelled) sequences are dropped from the
cache as they end. Between decode steps the scheduler may hand in more requests for the same
adapter: they are prefilled and concatenated into the running batch (:mod:`kvcache`). Token texts are decoded incrementally, as TGI does, so streamed texts concatenate
to the output. Adapters are peft LoRA modules on one shared base model; a batch switches to its
adapter (or disables adapters for the base model) before its forward passes.

Runs on the batcher's single worker thread only; it must not know about HTTP or queues.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from kubetune import logs
from kubetune.serving import config, kvcache, metrics, quantize, sampling
from kubetune.serving.generation import Finished, FinishReason, GenerationInput, Step, TokenInfo

_STOP_WINDOW = 300  # characters of output kept to match stop sequences (TGI keeps the same)
log = logging.getLogger(__name__)
Join = Callable[[int, int, int], list[tuple[int, GenerationInput]]]
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class LoadError(Exception):
    """The model or an adapter cannot be loaded; the message is one line naming the flag."""


class _Row:
    """One sequence of a running batch."""

    def __init__(self, index: int, request: GenerationInput) -> None:
        self.index = index
        self.request = request
        self.chooser = sampling.Chooser(request.sampling)
        self.all_ids = list(request.input_ids)
        self.generated: list[int] = []
        self.tokens: list[TokenInfo] = []
        self.top: list[list[TokenInfo]] = []
        self.prefill: list[TokenInfo] = []
        self.prefix_offset = max(0, len(self.all_ids) - 5)
        self.read_offset = len(self.all_ids)
        self.output_tail = ""


class Engine:
    def __init__(
        self, model: Any, tokenizer: Any, adapters: Sequence[str], model_id: str, dtype: str
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.adapters = tuple(adapters)
        self.model_id = model_id
        self.dtype = dtype
        model_config = getattr(model, "config", None)
        positions: Any = getattr(model_config, "max_position_embeddings", None) or getattr(
            model_config, "n_positions", None
        )
        self.context_length = int(positions or 2048)
        eos: set[int] = set()
        if tokenizer.eos_token_id is not None:
            eos.add(int(tokenizer.eos_token_id))
        generation_config = getattr(model, "generation_config", None)
        configured = getattr(generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            eos.add(configured)
        elif isinstance(configured, list):
            eos.update(int(e) for e in configured)
        self.eos_ids = frozenset(eos)
        self.special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (min(eos) if eos else 0))

    # ---- loading -----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model_id: str,
        adapters: Sequence[config.Adapter] = (),
        quantize_value: str | None = None,
        dtype: str | None = None,
    ) -> Engine:
        import transformers

        hf: Any = transformers  # partly typed; used through Any
        hf.logging.set_verbosity_error()
        quantize.check(quantize_value)
        directory = Path(model_id)
        if not directory.is_dir():
            raise LoadError(
                f"--model-id {model_id}: no such directory (kubetune serve loads local save_pretrained directories)"
            )
        if not (directory / "config.json").is_file():
            raise LoadError(
                f"--model-id {model_id}: no config.json; expected a directory written by save_pretrained"
            )
        try:
            model_config = hf.AutoConfig.from_pretrained(directory, local_files_only=True)
        except Exception as exc:
            raise LoadError(f"--model-id {model_id}: cannot read config.json: {_first_line(exc)}") from None
        quantize.check_model_config(model_config)
        dtype_name = dtype or "float32"
        try:
            tokenizer = hf.AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = hf.AutoModelForCausalLM.from_pretrained(
                directory, local_files_only=True, dtype=_DTYPES[dtype_name], low_cpu_mem_usage=True
            )
        except Exception as exc:
            raise LoadError(f"--model-id {model_id}: cannot load the model: {_first_line(exc)}") from None
        model.eval()
        names: list[str] = []
        if adapters:
            model = _load_adapters(model, adapters)
            names = [a.name for a in adapters]
        converted = quantize.apply(model, quantize_value)
        if quantize_value:
            log.info("quantized", extra=logs.fields(quantize=quantize_value, linear_layers=converted))
        tokenizer.padding_side = "left"
        return cls(model, tokenizer, names, model_id, "int8" if quantize_value else dtype_name)

    # ---- text ----------------------------------------------------------------------------------

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]]

    def offsets(self, text: str, add_special_tokens: bool = True) -> list[tuple[int, int, int]]:
        """(id, start, stop) character offsets, for /tokenize."""
        encoded = self.tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        return [
            (int(i), int(s), int(e))
            for i, (s, e) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        ]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The chat template applied with a generation prompt; raises ValueError if there is none."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("the model's tokenizer has no chat template")
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def _token(self, token_id: int, logprob: float) -> TokenInfo:
        text = str(self.tokenizer.decode([token_id], skip_special_tokens=False))
        return TokenInfo(token_id, text, logprob, token_id in self.special_ids)

    def _next_text(self, row: _Row) -> str:
        """TGI's incremental detokenization: text added by the last token, '' while incomplete."""
        prefix = self.decode(row.all_ids[row.prefix_offset : row.read_offset], skip_special_tokens=False)
        full = self.decode(row.all_ids[row.prefix_offset :], skip_special_tokens=False)
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            row.prefix_offset, row.read_offset = row.read_offset, len(row.all_ids)
            return full[len(prefix) :]
        return ""

    # ---- generation ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _adapter(self, name: str | None) -> Iterator[None]:
        if not self.adapters:
            yield
        elif name is None:
            with self.model.disable_adapter():
                yield
        else:
            self.model.set_adapter(name)
            yield

    def generate(
        self,
        requests: Sequence[tuple[int, GenerationInput]],
        emit: Callable[[int, Step], None],
        cancelled: Callable[[int], bool] = lambda _: False,
        recorder: metrics.TgiMetrics | None = None,
        join: Join | None = None,
    ) -> None:
        """Runs ``(key, request)`` pairs (one adapter) to completion; ``emit(key, step)`` per token.

        Between decode steps ``join(active_rows, active_budget, steps_since_prefill)`` may hand
        in more requests for the same adapter; they are prefilled and join the running batch.
        """
        if not requests:
            return
        adapters = {r.adapter for _, r in requests}
        if len(adapters) != 1:
            raise ValueError(f"one batch serves one adapter, got {sorted(map(str, adapters))}")
        with torch.inference_mode(), self._adapter(adapters.pop()):
            active, state = self._prefill([_Row(k, r) for k, r in requests], emit, cancelled, recorder)
            idle_steps = 0
            while True:
                if join is not None and state is not None and state.can_extend():
                    joining = join(len(active), sum(row.request.budget for row in active), idle_steps)
                    if joining:
                        idle_steps = 0
                        new_rows, new_state = self._prefill(
                            [_Row(k, r) for k, r in joining], emit, cancelled, recorder
                        )
                        if new_state is not None:
                            concat_start = time.perf_counter()
                            state.extend(new_state)
                            active = active + new_rows
                            if recorder is not None:
                                recorder.batch_concat.inc(reason="backpressure")
                                recorder.batch_concat_duration.observe(
                                    time.perf_counter() - concat_start, method="decode"
                                )
                if state is None:
                    return
                if recorder is not None:
                    recorder.batch_current_size.set(len(active))
                step_start = time.perf_counter()
                out = self._forward(
                    recorder, "decode", **state.step_inputs([r.generated[-1] for r in active])
                )
                state.past = out.past_key_values
                active, state = self._after_forward(
                    active, state, out.logits[:, -1, :], emit, cancelled, recorder, "decode", step_start
                )
                idle_steps += 1

    def _prefill(
        self,
        rows: list[_Row],
        emit: Callable[[int, Step], None],
        cancelled: Callable[[int], bool],
        recorder: metrics.TgiMetrics | None,
    ) -> tuple[list[_Row], kvcache.KvBatch | None]:
        step_start = time.perf_counter()
        inputs = kvcache.KvBatch.prefill_inputs([r.all_ids for r in rows], self.pad_id)
        want_prefill = any(r.request.decoder_input_details for r in rows)
        out = self._forward(
            recorder, "prefill", **inputs, use_cache=True, logits_to_keep=0 if want_prefill else 1
        )
        if want_prefill:
            self._prefill_details(rows, out.logits, inputs["input_ids"].shape[1])
        state = kvcache.KvBatch.after_prefill(out.past_key_values, inputs)
        return self._after_forward(
            rows, state, out.logits[:, -1, :], emit, cancelled, recorder, "prefill", step_start
        )

    def _after_forward(
        self,
        active: list[_Row],
        state: kvcache.KvBatch,
        logits: torch.Tensor,
        emit: Callable[[int, Step], None],
        cancelled: Callable[[int], bool],
        recorder: metrics.TgiMetrics | None,
        method: str,
        step_start: float,
    ) -> tuple[list[_Row], kvcache.KvBatch | None]:
        """Chooses and emits one token per row, then drops the rows that are done."""
        decode_start = time.perf_counter()
        finished = self._choose(active, logits, emit)
        now = time.perf_counter()
        if recorder is not None:
            recorder.batch_decode_duration.observe(now - decode_start, method=method)
            recorder.batch_inference_duration.observe(now - step_start, method=method)
            recorder.batch_inference_success.inc(method=method)
        keep = [n for n, row in enumerate(active) if row.index not in finished and not cancelled(row.index)]
        if not keep:
            return [], None
        if len(keep) < len(active):
            filter_start = time.perf_counter()
            state.select(keep)
            active = [active[n] for n in keep]
            if recorder is not None:
                recorder.batch_filter_duration.observe(time.perf_counter() - filter_start, method=method)
        return active, state

    def _forward(self, recorder: metrics.TgiMetrics | None, method: str, **inputs: Any) -> Any:
        if recorder is not None:
            recorder.batch_inference_count.inc(method=method)
        start = time.perf_counter()
        try:
            out = self.model(**inputs)
        except Exception:
            if recorder is not None:
                recorder.batch_inference_failure.inc(method=method)
            raise
        if recorder is not None:
            recorder.batch_forward_duration.observe(time.perf_counter() - start, method=method)
        return out

    def _choose(
        self, active: list[_Row], logits: torch.Tensor, emit: Callable[[int, Step], None]
    ) -> set[int]:
        """Picks one token per row, emits it, and returns the indexes of rows that finished."""
        greedy = [n for n, row in enumerate(active) if row.request.sampling.plain_greedy]
        chosen: dict[int, tuple[int, torch.Tensor]] = {}
        if greedy:
            tokens, logprobs = sampling.greedy_batch(logits[greedy])
            for k, n in enumerate(greedy):
                chosen[n] = (tokens[k], logprobs[k])
        for n, row in enumerate(active):
            if n not in chosen:
                chosen[n] = row.chooser.choose(row.all_ids, row.generated, logits[n])
        finished: set[int] = set()
        for n, row in enumerate(active):
            token_id, logprobs = chosen[n]
            if self._advance(row, token_id, logprobs, emit):
                finished.add(row.index)
        return finished

    def _advance(
        self, row: _Row, token_id: int, logprobs: torch.Tensor, emit: Callable[[int, Step], None]
    ) -> bool:
        row.all_ids.append(token_id)
        row.generated.append(token_id)
        text = self._next_text(row)
        token = TokenInfo(token_id, text, float(logprobs[token_id]), token_id in self.special_ids)
        top = [self._token(i, v) for i, v in sampling.top_tokens(logprobs, row.request.top_n_tokens)]
        row.tokens.append(token)
        row.top.append(top)
        row.output_tail = (row.output_tail + text)[-_STOP_WINDOW:]
        reason = self._stop_reason(row, token_id)
        step = Step(index=len(row.generated), token=token, top_tokens=top)
        if reason is not None:
            step.finished = Finished(
                generated_text=self.decode(row.generated, skip_special_tokens=True),
                finish_reason=reason,
                generated_tokens=len(row.generated),
                seed=row.request.sampling.seed if row.request.sampling.sampling else None,
                input_length=len(row.request.input_ids),
                tokens=row.tokens,
                top_tokens=row.top,
                prefill=row.prefill,
            )
        emit(row.index, step)
        return reason is not None

    def _stop_reason(self, row: _Row, token_id: int) -> FinishReason | None:
        # TGI's StoppingCriteria order: the length budget first, then EOS, then stop sequences.
        if len(row.generated) >= row.request.max_new_tokens:
            return FinishReason.LENGTH
        if token_id in self.eos_ids:
            return FinishReason.EOS_TOKEN
        if any(row.output_tail.endswith(stop) for stop in row.request.stop):
            return FinishReason.STOP_SEQUENCE
        return None

    def _prefill_details(self, rows: list[_Row], logits: torch.Tensor, width: int) -> None:
        for n, row in enumerate(rows):
            if not row.request.decoder_input_details:
                continue
            prompt = row.request.input_ids
            offset = width - len(prompt)
            logprobs = torch.log_softmax(logits[n, offset : width - 1].float(), dim=-1)
            row.prefill.append(self._token(prompt[0], math.nan))
            for j in range(1, len(prompt)):
                row.prefill.append(self._token(prompt[j], float(logprobs[j - 1, prompt[j]])))


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def threads() -> int:
    return int(torch.get_num_threads())


def _load_adapters(model: Any, adapters: Sequence[config.Adapter]) -> Any:
    from peft import PeftModel

    for adapter in adapters:
        if not adapter.path.is_dir():
            raise LoadError(f"--lora-adapters {adapter.name}={adapter.path}: no such directory")
        if not (adapter.path / "adapter_config.json").is_file():
            raise LoadError(
                f"--lora-adapters {adapter.name}={adapter.path}: no adapter_config.json; expected a peft adapter directory"
            )
    peft_model: Any = None
    for adapter in adapters:
        try:
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(model, str(adapter.path), adapter_name=adapter.name)
            else:
                peft_model.load_adapter(str(adapter.path), adapter_name=adapter.name)
        except Exception as exc:
            raise LoadError(
                f"--lora-adapters {adapter.name}={adapter.path}: cannot load: {_first_line(exc)}"
            ) from None
    peft_model.eval()
    return peft_model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
