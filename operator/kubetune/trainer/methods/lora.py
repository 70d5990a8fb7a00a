"""LoRA: trainable low-rank updates beside frozen linear layers (peft ``LoraConfig``).

Settings from ``spec.method.lora``. Used as is by ``dora`` (with ``use_dora``) and ``qlora``
(on a 4-bit base). Must not load data or train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer.methods import _peft

if TYPE_CHECKING:
    from kubetune.trainer.methods import Environment

ADAPTER = True
MERGEABLE = True


def check(spec: FineTuneJobSpec, env: Environment) -> list[str]:
    lora = spec.method.lora_settings()
    return _peft.target_problems("spec.method.lora.targetModules", lora.target_modules, env.info)


def load_kwargs(spec: FineTuneJobSpec, env: Environment) -> dict[str, Any]:
    return {}


def peft_config(spec: FineTuneJobSpec, env: Environment, *, dora: bool = False) -> Any:
    from peft import LoraConfig

    lora = spec.method.lora_settings()
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=_peft.lora_targets(lora.target_modules),
        bias=lora.bias,
        task_type=_peft.task_type(env.task),
        use_dora=dora,
    )


def apply(model: Any, spec: FineTuneJobSpec, env: Environment) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, peft_config(spec, env))
