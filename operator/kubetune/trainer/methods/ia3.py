"""(IA)^3: learned scaling vectors on keys, values and feed-forward activations (peft).

Settings from ``spec.method.ia3``; without target modules, peft's defaults for the
architecture apply, and the preflight says when it has none. Must not load data or train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec, IA3Config
from kubetune.trainer.methods import _peft

if TYPE_CHECKING:
    from kubetune.trainer.methods import Environment

ADAPTER = True
MERGEABLE = True


def check(spec: FineTuneJobSpec, env: Environment) -> list[str]:
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as defaults

    settings = spec.method.ia3 or IA3Config()
    if settings.target_modules is None:
        if env.info.model_type not in defaults:
            return [
                f"spec.method.ia3.targetModules is required: peft has no (IA)^3 defaults for model "
                f"type {env.info.model_type}; its linear layers are {', '.join(env.info.linear_names[:12])}"
            ]
        return []
    problems = _peft.target_problems("spec.method.ia3.targetModules", settings.target_modules, env.info)
    extra = set(settings.feedforward_modules or []) - set(settings.target_modules)
    if extra:
        problems.append(
            f"spec.method.ia3.feedforwardModules has {sorted(extra)} which are not in targetModules; "
            "every feed-forward module must also be a target"
        )
    return problems


def load_kwargs(spec: FineTuneJobSpec, env: Environment) -> dict[str, Any]:
    return {}


def apply(model: Any, spec: FineTuneJobSpec, env: Environment) -> Any:
    from peft import IA3Config as PeftIA3Config
    from peft import get_peft_model

    settings = spec.method.ia3 or IA3Config()
    kwargs: dict[str, Any] = {}
    if settings.target_modules is not None:
        kwargs["target_modules"] = list(settings.target_modules)
        kwargs["feedforward_modules"] = list(settings.feedforward_modules or [])
    return get_peft_model(model, PeftIA3Config(task_type=_peft.task_type(env.task), **kwargs))
