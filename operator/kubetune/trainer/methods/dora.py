"""DoRA: LoRA with the weight split into magnitude and direction (peft ``use_dora``).

Same settings as LoRA (``spec.method.lora``); only the adapter type differs. Must not load
data or train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer.methods import lora

if TYPE_CHECKING:
    from kubetune.trainer.methods import Environment

ADAPTER = True
MERGEABLE = True


def check(spec: FineTuneJobSpec, env: Environment) -> list[str]:
    return lora.check(spec, env)


def load_kwargs(spec: FineTuneJobSpec, env: Environment) -> dict[str, Any]:
    return {}


def apply(model: Any, spec: FineTuneJobSpec, env: Environment) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, lora.peft_config(spec, env, dora=True))
