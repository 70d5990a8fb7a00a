"""int8 weight-only export that loads and runs on a CPU, with no GPU library.

Every linear layer's weight is stored as int8 with one float scale per output channel
(symmetric, round-to-nearest); embeddings, norms, biases and a head tied to the embeddings
stay in float. The directory holds ``model.int8.safetensors``, ``config.json``, the tokenizer
and ``quantization.json``; :func:`load` rebuilds the model with :class:`Int8Linear` layers that
dequantize on the fly. Weights are about 4x smaller than fp32; speed is not the point.
GPU-only schemes (gptq, awq, nf4) are refused at preflight, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEIGHTS = "model.int8.safetensors"
META = "quantization.json"
SCHEME = "int8-weight-only-per-channel-symmetric"


def _int8_linear_class() -> Any:
    import torch

    class Int8Linear(torch.nn.Module):
        """A linear layer with an int8 weight and per-output-channel scales."""

        def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
            super().__init__()
            self.in_features, self.out_features = in_features, out_features
            self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
            self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32))
            self.bias = torch.nn.Parameter(torch.zeros(out_features)) if bias else None

        def forward(self, x: Any) -> Any:
            q: Any = self.weight_int8
            scale: Any = self.weight_scale
            w = q.to(x.dtype) * scale.to(x.dtype)[:, None]
            return torch.nn.functional.linear(x, w, self.bias)

    return Int8Linear


def quantize_weight(weight: Any) -> tuple[Any, Any]:
    """(int8 weight, float32 scale per row) of a 2-D float weight."""
    import torch

    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def _linear_names(model: Any) -> list[str]:
    import torch

    skip = None
    if getattr(model.config, "tie_word_embeddings", False) and model.get_output_embeddings() is not None:
        skip = model.get_output_embeddings()
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not skip]


def export(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    """Write the int8 export of a (merged, plain transformers) model to ``out_dir``."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    names = _linear_names(model)
    tensors: dict[str, Any] = {}
    quantized = {f"{n}.weight" for n in names}
    for key, value in model.state_dict().items():
        if key not in quantized:
            tensors[key] = value.detach().to("cpu").contiguous().clone()
    modules = dict(model.named_modules())
    for n in names:
        q, scale = quantize_weight(modules[n].weight)
        tensors[f"{n}.weight_int8"] = q.contiguous()
        tensors[f"{n}.weight_scale"] = scale.contiguous()
    save_file(tensors, str(out_dir / WEIGHTS), metadata={"format": "pt", "quantization": SCHEME})
    model.config.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    meta = {"scheme": SCHEME, "modules": names, "loader": "kubetune.trainer.quantize.load"}
    (out_dir / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return out_dir


def load(path: Path) -> Any:
    """The model of an int8 export, on CPU, in eval mode."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    meta = json.loads((path / META).read_text(encoding="utf-8"))
    config = AutoConfig.from_pretrained(str(path))
    archs = getattr(config, "architectures", None) or []
    auto = (
        AutoModelForSequenceClassification
        if any("SequenceClassification" in a for a in archs)
        else AutoModelForCausalLM
    )
    model = auto.from_config(config)  # type: ignore[no-untyped-call]
    int8_linear = _int8_linear_class()
    for name in meta["modules"]:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, child)
        setattr(parent, child, int8_linear(old.in_features, old.out_features, old.bias is not None))
    state = load_file(str(path / WEIGHTS))
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("lm_head.weight")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"int8 export {path} does not match its config: missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}"
        )
    model.tie_weights()
    model.eval()
    return model
