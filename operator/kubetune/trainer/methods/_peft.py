"""Helpers shared by the peft-based methods: task types and target-module checks.

Private to :mod:`kubetune.trainer.methods`; holds no method of its own.
"""

from __future__ import annotations

from typing import Any

from kubetune.trainer.models import ModelInfo, Task


def task_type(task: Task) -> Any:
    from peft import TaskType

    return TaskType.SEQ_CLS if task == "classification" else TaskType.CAUSAL_LM


def target_problems(field: str, targets: list[str] | None, info: ModelInfo) -> list[str]:
    """Targets that match no module of the base model, with the names that would."""
    if not targets or targets == ["all-linear"]:
        return []
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in info.module_names)]
    if not missing:
        return []
    shown = ", ".join(info.linear_names[:12])
    return [
        f"{field}: {', '.join(repr(m) for m in missing)} match no module of the base model "
        f"({info.model_type}); its linear layers are named {shown}"
    ]


def lora_targets(targets: list[str]) -> str | list[str]:
    return "all-linear" if targets == ["all-linear"] else list(targets)
