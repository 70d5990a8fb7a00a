"""Choosing the next token for one sequence, in TGI's order (its ``NextTokenChooser``).

Penalties (repetition, frequency), then warpers (temperature, top-k, top-p, typical-p), then
argmax or a seeded multinomial draw. Logprobs are the log-softmax of the processed scores, as TGI
reports them. Sequences with no processing at all are chosen together by :func:`greedy_batch`
(one argmax for the whole batch). Must not know about batching, adapters or HTTP.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.generation import logits_process as lp

from kubetune.serving.generation import Sampling


class Chooser:
    """Per-sequence state: the processors and, when sampling, a generator seeded once."""

    def __init__(self, sampling: Sampling) -> None:
        self.sampling = sampling
        self.generator: torch.Generator | None = None
        if sampling.sampling:
            self.generator = torch.Generator()
            self.generator.manual_seed(sampling.seed)
        warpers: list[Any] = []
        if sampling.temperature is not None and sampling.temperature != 1.0:
            warpers.append(lp.TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k is not None and sampling.top_k != 0:
            warpers.append(lp.TopKLogitsWarper(top_k=sampling.top_k))
        if sampling.top_p is not None and sampling.top_p < 1.0:
            warpers.append(lp.TopPLogitsWarper(top_p=sampling.top_p))
        if sampling.typical_p is not None and sampling.typical_p < 1.0:
            warpers.append(lp.TypicalLogitsWarper(mass=sampling.typical_p))
        self.warpers = warpers
        self.repetition = (
            lp.RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty)
            if sampling.repetition_penalty is not None and sampling.repetition_penalty != 1.0
            else None
        )

    def choose(
        self, all_ids: list[int], generated: list[int], scores: torch.Tensor
    ) -> tuple[int, torch.Tensor]:
        """``scores``: [vocab] float logits. Returns the token id and the [vocab] logprobs."""
        row = scores.float().unsqueeze(0)
        ids = torch.tensor([all_ids], dtype=torch.long)
        if self.repetition is not None:
            row = self.repetition(ids, row)
        if self.sampling.frequency_penalty and generated:
            counts = torch.bincount(torch.tensor(generated, dtype=torch.long), minlength=row.shape[-1])
            row = row - self.sampling.frequency_penalty * counts[: row.shape[-1]].to(row.dtype)
        for warper in self.warpers:
            row = warper(ids, row)
        logprobs = torch.log_softmax(row, dim=-1)[0]
        if self.generator is None:
            return int(torch.argmax(logprobs).item()), logprobs
        probs = torch.softmax(row, dim=-1)[0]
        token = torch.multinomial(probs, 1, generator=self.generator)
        return int(token.item()), logprobs


def greedy_batch(scores: torch.Tensor) -> tuple[list[int], torch.Tensor]:
    """``scores``: [batch, vocab]. Argmax per row and the [batch, vocab] logprobs."""
    logprobs = torch.log_softmax(scores.float(), dim=-1)
    return [int(t) for t in torch.argmax(logprobs, dim=-1).tolist()], logprobs


def top_tokens(logprobs: torch.Tensor, n: int) -> list[tuple[int, float]]:
    if n <= 0:
        return []
    values, indices = torch.topk(logprobs, k=min(n, logprobs.shape[-1]))
    return [(int(i), float(v)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)]
