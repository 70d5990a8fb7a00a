"""A tiny demo model for tests, the quickstart and the control-plane tests.

``python -m kubetune.trainer.tiny OUT_DIR --data FILE`` trains a byte-level BPE tokenizer on the
text of a dataset file (any of the supported formats), sets a chat template and special
tokens, and saves it with a randomly initialised small Llama (``save_pretrained``,
safetensors). It is a demo model: it knows nothing until fine-tuned, which is what makes the
base-versus-tuned comparison of the quickstart visible in minutes on a CPU. Offline; no hub.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def corpus(path: Path) -> list[str]:
    """Every string in a JSONL or JSON-array file (bad lines are skipped: this is a demo)."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    values: list[Any] = []
    if raw.lstrip().startswith("["):
        values = json.loads(raw)
    else:
        for line in raw.splitlines():
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    texts = list(_strings(values))
    # the default prompt template's words, so prompts are not spelled out byte by byte
    texts += ["### Instruction:\n", "### Input:\n", "### Response:\n"] * 8
    return texts


def build_tokenizer(texts: list[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[4:],
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(
    out_dir: Path,
    data: Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    vocab_size: int = 1024,
    max_positions: int = 512,
    init_range: float = 0.1,
    seed: int = 0,
) -> Path:
    """Write a tokenizer and a random Llama to ``out_dir``; returns ``out_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(corpus(data), vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        # larger than the usual 0.02 so that a frozen random output head can still express
        # confident predictions once an adapter aligns the hidden states with it
        initializer_range=init_range,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / "DEMO_MODEL.md").write_text(
        "A tiny randomly initialised Llama with a tokenizer trained on "
        f"{data.name}; made by `python -m kubetune.trainer.tiny`. It is a demo model for tests and "
        "the quickstart, not a useful language model.\n",
        encoding="utf-8",
    )
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubetune.trainer.tiny",
        description="Create a tiny random Llama and a tokenizer trained on a dataset (a demo model).",
    )
    parser.add_argument("out_dir", type=Path, help="directory to write the model to")
    parser.add_argument(
        "--data", type=Path, required=True, help="JSONL/JSON file whose text trains the tokenizer"
    )
    parser.add_argument("--hidden", type=int, default=64, help="hidden size (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="decoder layers (default 2)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    parser.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary size (default 1024)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"tiny: no such file: {args.data}", file=sys.stderr)
        return 1
    from kubetune.trainer import models

    models.quiet_transformers()
    build(
        args.out_dir,
        args.data,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        vocab_size=args.vocab_size,
        seed=args.seed,
    )
    print(f"tiny demo model written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
