"""Tokenising rendered examples into ids and labels, truncated to ``maxSeqLength``.

The label mask comes from the tokenizer's character offsets: a token carries loss when it
starts inside a trainable span of :class:`~kubetune.trainer.templates.Rendered`; everything
else is ``-100``. The lengths before truncation are kept for the preflight's histogram, and
the count of trainable tokens after truncation is what flags a sample whose response was cut
away. No model, no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from kubetune.trainer.formats import Example
from kubetune.trainer.templates import Rendered

IGNORE = -100


@dataclasses.dataclass(frozen=True)
class Encoded:
    """One tokenised example. ``labels`` is empty and ``label`` set for classification."""

    example: Example
    input_ids: list[int]
    labels: list[int]
    full_length: int
    label: int | None = None
    response_start: int | None = None  # index of the first trainable token before truncation

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def trainable(self) -> int:
        if self.label is not None:
            return 1
        return sum(1 for x in self.labels[1:] if x != IGNORE)

    @property
    def truncated(self) -> bool:
        return self.full_length > len(self.input_ids)


def _in_spans(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    if start == end == 0:
        return False  # a special token added by the tokenizer (BOS), not part of the text
    return any(a <= start < b for a, b in spans)


def encode_causal(
    tokenizer: Any, examples: Sequence[Example], rendered: Sequence[Rendered], max_len: int
) -> list[Encoded]:
    """Tokenise generation-format examples (batched by tokenizer settings)."""
    out: list[Encoded | None] = [None] * len(examples)
    eos = getattr(tokenizer, "eos_token_id", None)
    groups: dict[bool, list[int]] = {}
    for i, r in enumerate(rendered):
        groups.setdefault(r.add_special_tokens, []).append(i)
    for add_special, indices in groups.items():
        batch = tokenizer(
            [rendered[i].text for i in indices],
            add_special_tokens=add_special,
            return_offsets_mapping=True,
        )
        for j, i in enumerate(indices):
            r = rendered[i]
            ids = list(batch["input_ids"][j])
            mask = [_in_spans(s, e, r.spans) for s, e in batch["offset_mapping"][j]]
            if r.append_eos and eos is not None:
                ids.append(int(eos))
                mask.append(bool(r.spans) and r.spans[-1][1] >= len(r.text))
            full = len(ids)
            start = next((k for k, m in enumerate(mask) if m and k > 0), None)
            ids, mask = ids[:max_len], mask[:max_len]
            labels = [t if m else IGNORE for t, m in zip(ids, mask, strict=True)]
            if labels:
                labels[0] = IGNORE  # nothing predicts the first token
            out[i] = Encoded(examples[i], ids, labels, full, response_start=start)
    return [e for e in out if e is not None]


def encode_classification(
    tokenizer: Any, examples: Sequence[Example], label_ids: dict[str, int], max_len: int
) -> list[Encoded]:
    """Tokenise classification examples with the tokenizer's own special tokens."""
    texts = [e.text for e in examples]
    full = tokenizer(texts, add_special_tokens=True)["input_ids"]
    cut = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_len)["input_ids"]
    return [
        Encoded(e, list(ids), [], len(f), label=label_ids[e.label])
        for e, ids, f in zip(examples, cut, full, strict=True)
    ]


def encode_prompt(tokenizer: Any, rendered: Rendered) -> list[int]:
    """Token ids of the generation prompt of one example."""
    ids = tokenizer(rendered.prompt, add_special_tokens=rendered.add_special_tokens)["input_ids"]
    return [int(t) for t in ids]
