"""Preference rows as tokenised pairs: each answer rendered after the prompt, its own sequence.

A string prompt is followed by the answer as is (like the completion format); a message-list
prompt goes through the chat template with the answer as the final assistant turn. Only the
answer's tokens (and the end-of-sequence token the template or tokenizer appends) are scored:
earlier assistant turns of a chat prompt are context. A :class:`Pair` is an
:class:`~kubetune.trainer.encoding.Encoded` whose own ids are the chosen side's (so generic code
such as the preflight's marked sample shows the chosen answer), whose length is both sides'
tokens and whose unit of loss is the pair. No model, no torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer import encoding
from kubetune.trainer.encoding import Encoded
from kubetune.trainer.formats import Example, Message
from kubetune.trainer.templates import Rendered, Renderer


@dataclasses.dataclass(frozen=True)
class Pair(Encoded):
    """A prompt with a chosen and a rejected answer, tokenised; optionally the reference
    model's summed log-probabilities of both answers."""

    chosen: Encoded | None = None
    rejected: Encoded | None = None
    ref_chosen: float | None = None
    ref_rejected: float | None = None

    @property
    def sides(self) -> tuple[Encoded, Encoded]:
        assert self.chosen is not None and self.rejected is not None
        return self.chosen, self.rejected

    @property
    def length(self) -> int:
        return sum(s.length for s in self.sides)

    @property
    def trainable(self) -> int:
        return 1  # the loss is a mean over pairs

    @property
    def truncated(self) -> bool:
        return any(s.truncated for s in self.sides)


def side_example(ex: Example, answer: str) -> Example:
    """The example of one answer in the chat or completion format it renders as."""
    if ex.messages:
        return Example(ex.file, ex.line, "chat", messages=(*ex.messages, Message("assistant", answer)))
    return Example(ex.file, ex.line, "completion", prompt=ex.prompt, completion=answer)


def _render(renderer: Renderer, ex: Example) -> Rendered:
    r = renderer.render(ex)
    return dataclasses.replace(r, spans=r.spans[-1:])  # only the final answer is scored


def make_pair(ex: Example, chosen: Encoded, rejected: Encoded) -> Pair:
    return Pair(
        example=ex,
        input_ids=chosen.input_ids,
        labels=chosen.labels,
        full_length=max(chosen.full_length, rejected.full_length),
        response_start=chosen.response_start,
        chosen=chosen,
        rejected=rejected,
    )


def encode_pairs(tokenizer: Any, examples: list[Example], max_len: int) -> list[Pair]:
    """Tokenise both answers of every example (truncated to ``max_len`` each)."""
    renderer = Renderer(tokenizer, None, train_on_inputs=False)
    sides: dict[str, list[Encoded]] = {}
    for name in ("chosen", "rejected"):
        exs = [side_example(e, getattr(e, name)) for e in examples]
        sides[name] = encoding.encode_causal(tokenizer, exs, [_render(renderer, e) for e in exs], max_len)
    return [make_pair(e, c, r) for e, c, r in zip(examples, sides["chosen"], sides["rejected"], strict=True)]


def encode(
    train: list[Example], validation: list[Example], spec: FineTuneJobSpec, tokenizer: Any
) -> tuple[list[Pair], list[Pair]]:
    """Both splits as pairs."""
    max_len = spec.hyperparameters.max_seq_length
    return encode_pairs(tokenizer, train, max_len), encode_pairs(tokenizer, validation, max_len)
