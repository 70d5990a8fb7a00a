"""Loading base models and tokenizers, and what the preflight needs to know about them.

Causal language models for the generation formats, sequence classification for
``classification`` (an encoder such as MiniLM, or a decoder with a score head); the head of a
classifier is initialised from the job's seed, so the base model evaluated for comparison is
exactly the model training starts from. :func:`describe` builds the model on the meta device
(no weights read, no memory) to count parameters and list module names for the preflight.
Imports torch and transformers lazily; no training logic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Literal

from kubetune.trainer.errors import UserError

Task = Literal["causal", "classification"]
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the preflight knows about a base model without loading its weights."""

    model_type: str
    architectures: tuple[str, ...]
    parameters: int
    linear_names: tuple[str, ...]  # last name component of every nn.Linear, e.g. q_proj
    module_names: tuple[str, ...]
    hidden_size: int
    max_positions: int | None


def quiet_transformers() -> None:
    """Silence transformers' and peft's chatty warnings; our own logs say what matters."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    for name in ("peft", "accelerate", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load_tokenizer(path: Path, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of the base model, with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the tokenizer from {path}: {str(exc).splitlines()[0]}") from None
    if not getattr(tok, "is_fast", False):
        raise UserError(
            f"the tokenizer at {path} is not a fast (Rust) tokenizer; kubetune needs character "
            "offsets to build the label mask: save it with tokenizer.json"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def load_config(path: Path, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the model config in {path}: {str(exc).splitlines()[0]}") from None


def _auto_class(task: Task) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return AutoModelForSequenceClassification if task == "classification" else AutoModelForCausalLM


def is_causal(config: Any) -> bool:
    """Whether the architecture generates text (a *ForCausalLM)."""
    archs = tuple(getattr(config, "architectures", None) or ())
    if archs:
        return any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs)
    return not bool(getattr(config, "is_encoder_decoder", False)) and config.model_type not in (
        "bert",
        "roberta",
    )


def describe(path: Path, task: Task, num_labels: int, *, trust_remote_code: bool = False) -> ModelInfo:
    """Parameter count and module names of the base model, built on the meta device."""
    import torch
    from accelerate import init_empty_weights

    config = load_config(path, trust_remote_code=trust_remote_code)
    if task == "classification":
        config.num_labels = max(num_labels, 2)
    try:
        with init_empty_weights():
            model = _auto_class(task).from_config(config, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        raise UserError(
            f"the base model in {path} cannot be used for {task}: {str(exc).splitlines()[0]}"
        ) from None
    names = tuple(n for n, _ in model.named_modules() if n)
    linears = sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    return ModelInfo(
        model_type=str(config.model_type),
        architectures=tuple(getattr(config, "architectures", None) or ()),
        parameters=sum(p.numel() for p in model.parameters()),
        linear_names=tuple(linears),
        module_names=names,
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
        max_positions=getattr(config, "max_position_embeddings", None),
    )


def load_model(
    path: Path,
    task: Task,
    *,
    label_names: list[str] | None = None,
    pad_token_id: int | None = None,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """The base model's weights (CPU, fp32 unless ``extra`` says otherwise)."""
    import torch

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, **(extra or {})}
    if task == "classification":
        names = label_names or ["0", "1"]
        kwargs["num_labels"] = len(names)
        kwargs["id2label"] = dict(enumerate(names))
        kwargs["label2id"] = {n: i for i, n in enumerate(names)}
    torch.manual_seed(seed)  # the fresh classification head is part of the base model
    try:
        model = _auto_class(task).from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the base model from {path}: {str(exc).splitlines()[0]}") from None
    if getattr(model.config, "pad_token_id", None) is None and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model


@contextlib.contextmanager
def evaluating(model: Any) -> Any:
    """``model.eval()`` and no grad for the block, restoring training mode after."""
    import torch

    was_training = bool(model.training)
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        if was_training:
            model.train()
