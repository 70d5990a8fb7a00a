"""Held-out metrics of a model on preference pairs.

- ``preferenceAccuracy``: share of pairs where the model gives the chosen answer a higher
  summed log-probability than the rejected one (ties count as wrong);
- ``rewardMargin``: mean of ``beta * ((pc - rc) - (pr - rr))``, DPO's implicit reward of the
  chosen answer minus that of the rejected one, relative to the base model (so 0 for the base
  model itself, whatever ``spec.preference.loss``);
- ``loss``: the mean of the training objective on the held-out pairs (for the base model, the
  objective with the base model as its own reference: log 2 for sigmoid);
- ``perplexity``: of the chosen answers' tokens.
Scores one model; comparison and the gate are :mod:`kubetune.trainer.evaluate`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kubetune.api.v1alpha1.preference import PreferenceSpec
from kubetune.trainer.preference import reference
from kubetune.trainer.preference.data import Pair
from kubetune.trainer.preference.logps import losses


def values(
    model: Any, pairs: Sequence[Pair], spec: PreferenceSpec, pad_id: int, device: str
) -> dict[str, float]:
    """Every preference metric of ``model`` on ``pairs``; the pairs' reference scores, when
    attached, are the base side (else the model is its own reference)."""
    import torch

    if not pairs:
        return {}
    policy = reference.score(model, pairs, pad_id, device)
    pc = torch.tensor([c for c, _ in policy], dtype=torch.float64)
    pr = torch.tensor([r for _, r in policy], dtype=torch.float64)
    has_ref = all(p.ref_chosen is not None and p.ref_rejected is not None for p in pairs)
    rc = torch.tensor([p.ref_chosen for p in pairs], dtype=torch.float64) if has_ref else pc
    rr = torch.tensor([p.ref_rejected for p in pairs], dtype=torch.float64) if has_ref else pr
    nc = torch.tensor([p.sides[0].trainable for p in pairs], dtype=torch.float64)
    nr = torch.tensor([p.sides[1].trainable for p in pairs], dtype=torch.float64)
    loss = float(losses(spec, pc, pr, rc, rr, nc, nr).mean())
    nll = float(-pc.sum() / nc.sum().clamp(min=1))
    return {
        "loss": loss,
        "perplexity": math.exp(min(nll, 80.0)),
        "preferenceAccuracy": float((pc > pr).double().mean()),
        "rewardMargin": float((spec.beta * ((pc - rc) - (pr - rr))).mean()),
    }
