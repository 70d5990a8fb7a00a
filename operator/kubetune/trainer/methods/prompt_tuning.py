"""Prompt tuning: learned virtual-token embeddings prepended to every input (peft).

Settings from ``spec.method.promptTuning``; ``initText`` initialises the virtual tokens from a
text's embeddings. Cannot be merged into the base weights. Must not load data or train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec, PromptTuningConfig
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
    from peft import PromptTuningConfig as PeftPromptTuningConfig
    from peft import PromptTuningInit, get_peft_model

    settings = spec.method.prompt_tuning or PromptTuningConfig()
    kwargs: dict[str, Any] = {}
    if settings.init_text:
        kwargs = {
            "prompt_tuning_init": PromptTuningInit.TEXT,
            "prompt_tuning_init_text": settings.init_text,
            "tokenizer_name_or_path": env.base_path,
        }
    config = PeftPromptTuningConfig(
        task_type=_peft.task_type(env.task), num_virtual_tokens=settings.num_virtual_tokens, **kwargs
    )
    return get_peft_model(model, config)
