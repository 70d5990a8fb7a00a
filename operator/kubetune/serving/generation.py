"""What one generation asks for and what it yields: plain data shared by validation, batcher, engine.

A validated request becomes a :class:`GenerationInput` (token ids, sampling and stopping
parameters, adapter). The engine answers with one :class:`Step` per generated token; the last
step carries :class:`Finished`. Timestamps are ``time.perf_counter()`` values. No torch, no I/O.
"""

from __future__ import annotations

import dataclasses
import enum


class FinishReason(enum.StrEnum):
    LENGTH = "length"
    EOS_TOKEN = "eos_token"
    STOP_SEQUENCE = "stop_sequence"

    def openai(self) -> str:
        """OpenAI's finish_reason: TGI reports end-of-sequence and stop sequences as "stop"."""
        return "length" if self is FinishReason.LENGTH else "stop"


@dataclasses.dataclass
class Sampling:
    do_sample: bool = False
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int = 0

    @property
    def has_warpers(self) -> bool:
        """TGI samples whenever a warper is set, even with do_sample false."""
        return (
            (self.temperature is not None and self.temperature != 1.0)
            or (self.top_k is not None and self.top_k != 0)
            or (self.top_p is not None and self.top_p < 1.0)
            or (self.typical_p is not None and self.typical_p < 1.0)
        )

    @property
    def sampling(self) -> bool:
        return self.do_sample or self.has_warpers

    @property
    def plain_greedy(self) -> bool:
        """Argmax of unprocessed logits: rows like this are decided together, vectorized."""
        return not self.sampling and not self.repetition_penalty and not self.frequency_penalty


@dataclasses.dataclass
class GenerationInput:
    input_ids: list[int]
    max_new_tokens: int
    sampling: Sampling = dataclasses.field(default_factory=Sampling)
    stop: list[str] = dataclasses.field(default_factory=list)
    top_n_tokens: int = 0
    decoder_input_details: bool = False
    adapter: str | None = None  # None: the base model

    @property
    def budget(self) -> int:
        """Tokens this request may occupy in a batch."""
        return len(self.input_ids) + self.max_new_tokens


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    id: int
    text: str
    logprob: float
    special: bool = False


@dataclasses.dataclass
class Finished:
    generated_text: str  # special tokens skipped, prompt not included
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None  # None when decoding was greedy
    input_length: int
    tokens: list[TokenInfo]
    top_tokens: list[list[TokenInfo]]
    prefill: list[TokenInfo]  # empty unless decoder_input_details; first logprob is NaN


@dataclasses.dataclass
class Step:
    index: int  # 1-based position of this token in the output
    token: TokenInfo
    top_tokens: list[TokenInfo]
    finished: Finished | None = None


@dataclasses.dataclass
class Timing:
    """One request's clock, filled in as it moves through the runtime (perf_counter seconds)."""

    start: float
    validated: float = 0.0
    queued: float = 0.0
    batch_start: float = 0.0
    end: float = 0.0  # last token chosen (batcher thread)
    responded: float = 0.0  # last byte handed to the HTTP layer
    injected_latency: float = 0.0

    @property
    def validation(self) -> float:
        return max(0.0, self.validated - self.start)

    @property
    def queue(self) -> float:
        return max(0.0, self.batch_start - self.queued)

    @property
    def inference(self) -> float:
        return max(0.0, self.end - self.batch_start) + self.injected_latency

    @property
    def total(self) -> float:
        return max(0.0, (self.responded or self.end) - self.start)
