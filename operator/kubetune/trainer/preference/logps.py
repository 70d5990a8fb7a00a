"""Scoring answers and the preference objectives, on any causal LM's plain logits.

:func:`answer_logps` runs one forward pass over a batch of pairs (the chosen answers, then the
rejected ones, right-padded) and returns, per answer, the sum of the log-probabilities of its
scored tokens and their count. :func:`losses` turns policy (and reference) sums into per-pair
losses:

- ``sigmoid`` (DPO): ``-log sigmoid(beta * ((pc - rc) - (pr - rr)))`` with summed log-probs,
  as TRL's ``DPOTrainer`` (loss_type sigmoid);
- ``ipo``: ``((pc - rc)/nc - (pr - rr)/nr - 1/(2 beta))^2``, log-ratios averaged per token as
  TRL does;
- ``orpo`` (reference-free): ``-pc/nc - beta * log sigmoid(log odds)``, the log odds taken from
  per-token average log-probs, as TRL's ``ORPOTrainer``.

:class:`Objective` is what the training loop calls for a preference micro-batch. Uses only the
model's ``logits`` output, so it works the same with transformers 4 and 5, with or without a
PEFT wrapper or DistributedDataParallel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from kubetune.api.v1alpha1.preference import PreferenceSpec
from kubetune.trainer.encoding import IGNORE, Encoded
from kubetune.trainer.preference.data import Pair


def collate(pairs: Sequence[Pair], pad_id: int) -> dict[str, Any]:
    """input_ids, attention_mask and labels of the chosen answers followed by the rejected ones."""
    import torch

    rows = [p.sides[0] for p in pairs] + [p.sides[1] for p in pairs]
    width = max(r.length for r in rows)
    pad = [width - r.length for r in rows]
    return {
        "input_ids": torch.tensor([r.input_ids + [pad_id] * n for r, n in zip(rows, pad, strict=True)]),
        "attention_mask": torch.tensor([[1] * r.length + [0] * n for r, n in zip(rows, pad, strict=True)]),
        "labels": torch.tensor([r.labels + [IGNORE] * n for r, n in zip(rows, pad, strict=True)]),
    }


def answer_logps(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """(summed log-probabilities, scored-token counts) per row of ``batch``, in float32."""
    import torch

    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    logits = out.logits[:, :-1].float()
    target = batch["labels"][:, 1:]
    mask = target != IGNORE
    picked = logits.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    token_logps = picked - torch.logsumexp(logits, dim=-1)
    return (token_logps * mask).sum(-1), mask.sum(-1)


def _log1m_exp(x: Any) -> Any:
    """log(1 - exp(x)) for x < 0, stable near 0."""
    import torch

    return torch.log(-torch.expm1(x.clamp(max=-1e-7)))


def losses(
    spec: PreferenceSpec,
    chosen: Any,
    rejected: Any,
    ref_chosen: Any,
    ref_rejected: Any,
    n_chosen: Any,
    n_rejected: Any,
) -> Any:
    """Per-pair loss of ``spec.loss``; the reference tensors are ignored by orpo."""
    import torch.nn.functional as F

    beta = spec.beta
    if spec.loss == "sigmoid":
        return -F.logsigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected)))
    nc, nr = n_chosen.clamp(min=1), n_rejected.clamp(min=1)
    if spec.loss == "ipo":
        delta = (chosen - ref_chosen) / nc - (rejected - ref_rejected) / nr
        return (delta - 1 / (2 * beta)) ** 2
    avg_c, avg_r = chosen / nc, rejected / nr
    log_odds = (avg_c - avg_r) - (_log1m_exp(avg_c) - _log1m_exp(avg_r))
    return -avg_c - beta * F.logsigmoid(log_odds)


@dataclasses.dataclass(frozen=True)
class Objective:
    """The loss of a preference micro-batch, summed over its pairs (the loop divides by the
    step's pair count). Batches are never packed: each plan row holds one pair."""

    spec: PreferenceSpec
    pad_id: int

    def loss_sum(self, model: Any, plan: list[list[int]], data: Sequence[Encoded], device: str) -> Any:
        import torch

        pairs = [_pair(data[i]) for row in plan for i in row]
        batch = {k: v.to(device) for k, v in collate(pairs, self.pad_id).items()}
        sums, counts = answer_logps(model, batch)
        chosen, rejected = sums.chunk(2)
        n_chosen, n_rejected = counts.chunk(2)
        ref_c = ref_r = torch.zeros_like(chosen)
        if self.spec.needs_reference:
            ref_c = torch.tensor([_ref(p.ref_chosen) for p in pairs], device=chosen.device)
            ref_r = torch.tensor([_ref(p.ref_rejected) for p in pairs], device=chosen.device)
        return losses(self.spec, chosen, rejected, ref_c, ref_r, n_chosen, n_rejected).sum()


def _pair(item: Encoded) -> Pair:
    if not isinstance(item, Pair):
        raise TypeError("a preference objective needs preference pairs")
    return item


def _ref(value: float | None) -> float:
    if value is None:
        raise RuntimeError("reference log-probabilities were not computed before training")
    return value
