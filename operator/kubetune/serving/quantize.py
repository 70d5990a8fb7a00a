"""``--quantize`` on CPU: TGI's values are accepted by name; only ``bitsandbytes`` runs here.

TGI's ``bitsandbytes`` is LLM.int8 (8-bit weights). Its CPU counterpart here is PyTorch's dynamic
int8 quantization of the base model's ``nn.Linear`` layers (int8 weights with per-channel scales,
activations quantized on the fly). LoRA layers and ``lm_head`` stay in float, so adapters keep
their effect. Every other value needs GPU kernels (GPTQ/AWQ/Marlin/EXL2/EETQ/FP8/NF4/FP4) and is
refused at start-up by :func:`check` with a one-line message. Must not load models itself.
"""

from __future__ import annotations

from typing import Any

from kubetune.serving import config

CPU_VALUES = ("bitsandbytes",)


class QuantizeError(Exception):
    """A ``--quantize`` value this runtime cannot serve; the message is one line."""


def check(value: str | None) -> None:
    if value is None or value in CPU_VALUES:
        return
    if value not in config.QUANTIZE_VALUES:
        raise QuantizeError(
            f"--quantize {value!r} is not a TGI quantize value ({', '.join(config.QUANTIZE_VALUES)})"
        )
    raise QuantizeError(
        f"--quantize {value} needs GPU kernels that kubetune serve does not have; "
        "serve it with TGI on a GPU, or use --quantize bitsandbytes (int8 on CPU) or no --quantize"
    )


def check_model_config(model_config: Any) -> None:
    """Pre-quantized checkpoints (GPTQ, AWQ ...) are detected from config.json, as TGI does."""
    qconfig = getattr(model_config, "quantization_config", None)
    if qconfig is None:
        return
    method = (
        qconfig.get("quant_method") if isinstance(qconfig, dict) else getattr(qconfig, "quant_method", None)
    )
    raise QuantizeError(
        f"the model is pre-quantized ({method or 'unknown method'}), which needs GPU kernels; "
        "serve it with TGI on a GPU, or give kubetune serve an unquantized checkpoint"
    )


def apply(model: Any, value: str | None) -> int:
    """Quantizes in place; returns how many Linear layers were converted."""
    if value is None:
        return 0
    check(value)
    import torch

    quantization: Any = torch.ao.quantization  # untyped in torch's stubs
    names = {
        name: quantization.default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and "lora_" not in name and not name.endswith("lm_head")
    }
    if not names:
        return 0
    quantization.quantize_dynamic(model, qconfig_spec=names, dtype=torch.qint8, inplace=True)
    return len(names)
