"""QLoRA: LoRA on a base model loaded in 4 bits through bitsandbytes (CUDA only).

The preflight refuses it on a machine without a CUDA GPU or without bitsandbytes, before any
training starts. Settings from ``spec.method.qlora`` (quantization) and ``spec.method.lora``.
Must not load data or train.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec, QLoraConfig
from kubetune.trainer.methods import lora

if TYPE_CHECKING:
    from kubetune.trainer.methods import Environment

ADAPTER = True
MERGEABLE = True


def check(spec: FineTuneJobSpec, env: Environment) -> list[str]:
    if not env.cuda:
        return [
            "spec.method.type qlora loads the base model in 4 bits with bitsandbytes, which needs a "
            "CUDA GPU, and none is visible here; use method lora (or dora) on CPU, or run on a GPU node"
        ]
    if importlib.util.find_spec("bitsandbytes") is None:
        return ["spec.method.type qlora needs the bitsandbytes package; pip install bitsandbytes"]
    return lora.check(spec, env)


def load_kwargs(spec: FineTuneJobSpec, env: Environment) -> dict[str, Any]:
    import torch
    from transformers import BitsAndBytesConfig

    q = spec.method.qlora or QLoraConfig()
    return {
        "quantization_config": BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type=q.quant_type,
            bnb_4bit_use_double_quant=q.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, q.compute_dtype),
        ),
        # this process's GPU: under torchrun, distributed.init has selected cuda:LOCAL_RANK
        "device_map": {"": torch.cuda.current_device()},
    }


def apply(model: Any, spec: FineTuneJobSpec, env: Environment) -> Any:
    from peft import get_peft_model, prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
        model, use_gradient_checkpointing=spec.hyperparameters.gradient_checkpointing
    )
    return get_peft_model(model, lora.peft_config(spec, env))
