"""Full fine-tuning: every weight is trained (optionally not the input embeddings).

The result is a whole model, not an adapter. Settings from ``spec.method.full``. Must not load
data or train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec

if TYPE_CHECKING:
    from kubetune.trainer.methods import Environment

ADAPTER = False
MERGEABLE = True


def check(spec: FineTuneJobSpec, env: Environment) -> list[str]:
    return []


def load_kwargs(spec: FineTuneJobSpec, env: Environment) -> dict[str, Any]:
    return {}


def apply(model: Any, spec: FineTuneJobSpec, env: Environment) -> Any:
    for p in model.parameters():
        p.requires_grad_(True)
    if spec.method.full is not None and spec.method.full.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    return model
