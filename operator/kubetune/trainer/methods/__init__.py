"""Training methods, one module each with the same functions, registered in :data:`METHODS`.

Each method module defines:

- ``ADAPTER`` (bool): it trains a peft adapter (else the whole model is the result);
- ``MERGEABLE`` (bool): its result can be merged into the base weights (merge, int8 export);
- ``check(spec, env) -> list[str]``: problems found at preflight, before any GPU is spent;
- ``load_kwargs(spec, env) -> dict``: extra ``from_pretrained`` arguments (4-bit loading);
- ``apply(model, spec, env) -> model``: the model with exactly the trainable parameters set.

Adding a method means adding a module and one line here (peft's pattern). Methods must not
read data, run training steps or write files.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType

from kubetune.trainer.methods import dora, full, ia3, lora, prefix_tuning, prompt_tuning, qlora
from kubetune.trainer.models import ModelInfo, Task

METHODS: dict[str, ModuleType] = {
    "lora": lora,
    "dora": dora,
    "qlora": qlora,
    "full": full,
    "prompt-tuning": prompt_tuning,
    "prefix-tuning": prefix_tuning,
    "ia3": ia3,
}


@dataclasses.dataclass(frozen=True)
class Environment:
    """What a method may look at: the task, the hardware and the base model's shape."""

    task: Task
    cuda: bool
    base_path: str
    info: ModelInfo


def get(name: str) -> ModuleType:
    """The module of method ``name`` (validated by the API, so always present)."""
    return METHODS[name]
