"""Prefix tuning: learned key/value prefixes for every attention layer (peft).

Settings from ``spec.method.prefixTuning``. Cannot be merged into the base weights. Must not
load data or train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec, PrefixTuningConfig
from kubetune.trainer.methods import _peft

if TYPE_CHECKING:
    from kubetune.trainer.methods import Environment

ADAPTER = True
MERGEABLE = False


def check(spec: FineTuneJobSpec, env: Environment) -> list[str]:
    return []


def load_kwargs(spec: FineTuneJobSpec, env: Environment) -> dict[str, Any]:
    return {}


def apply(model: Any, spec: FineTuneJobSpec, env: Environment) -> Any:
    from peft import PrefixTuningConfig as PeftPrefixTuningConfig
    from peft import get_peft_model

    settings = spec.method.prefix_tuning or PrefixTuningConfig()
    config = PeftPrefixTuningConfig(
        task_type=_peft.task_type(env.task),
        num_virtual_tokens=settings.num_virtual_tokens,
        prefix_projection=settings.projection,
    )
    return get_peft_model(model, config)
