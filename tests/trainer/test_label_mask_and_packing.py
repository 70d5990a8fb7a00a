"""The label mask puts loss exactly on responses (instruction) and assistant turns (chat), on
everything with trainOnInputs; packed rows give every sequence the same logits as alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import batching, dataset, encoding
from kubetune.trainer import spec as job_spec
from kubetune.trainer.encoding import IGNORE


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    from kubetune.trainer import models

    return models.load_tokenizer(tiny_model)


def _prepare(write_spec: Any, tokenizer: Any, rows: list[dict[str, Any]], **spec: Any) -> dataset.Prepared:
    job = job_spec.load(write_spec(rows, spec={"dataset": {"validationSplit": 0.0}, **spec}))
    return dataset.encode(dataset.load(job.spec, base_dir=job.base_dir), job.spec, tokenizer)


def _trained_text(tokenizer: Any, e: encoding.Encoded) -> str:
    return str(tokenizer.decode([t for t, lab in zip(e.input_ids, e.labels, strict=True) if lab != IGNORE]))


def test_instruction_loss_is_on_the_response_and_eos_only(write_spec: Any, tokenizer: Any) -> None:
    rows = [{"instruction": "What does the cat say?", "input": "be brief", "output": "The cat meows."}]
    e = _prepare(write_spec, tokenizer, rows).train[0]
    assert _trained_text(tokenizer, e) == "The cat meows.</s>"
    assert e.trainable == len(tokenizer("The cat meows.", add_special_tokens=False)["input_ids"]) + 1


def test_chat_loss_is_on_assistant_turns_only(write_spec: Any, tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What does the cow say?"},
        {"role": "assistant", "content": "It moos."},
        {"role": "user", "content": "And the owl?"},
        {"role": "assistant", "content": "It hoots."},
    ]
    prepared = _prepare(
        write_spec, tokenizer, [{"messages": messages}], dataset={"format": "auto", "validationSplit": 0.0}
    )
    assert prepared.format == "chat"
    text = _trained_text(tokenizer, prepared.train[0])
    assert "It moos." in text and "It hoots." in text
    assert "cow" not in text and "owl" not in text and "terse" not in text and "<|user|>" not in text


def test_train_on_inputs_puts_loss_on_every_token(write_spec: Any, tokenizer: Any) -> None:
    rows = [{"instruction": "What does the cat say?", "output": "The cat meows."}]
    e = _prepare(write_spec, tokenizer, rows, method={"type": "lora", "trainOnInputs": True}).train[0]
    assert e.trainable == e.length - 1  # every token but the first, which nothing predicts


def test_packed_sequences_do_not_see_each_other(tiny_model: Path, write_spec: Any, tokenizer: Any) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    rows = [
        {"instruction": "What does the cat say?", "output": "The cat meows."},
        {"instruction": "Name the animal that oinks.", "output": "It is the pig."},
    ]
    data = _prepare(write_spec, tokenizer, rows).train
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    packed = batching.collate([[0, 1]], data, tokenizer.pad_token_id, packed=True)
    packed.pop("labels")
    assert "attention_mask" not in packed
    with torch.no_grad():
        together = model(**packed, use_cache=False).logits[0]
        first = model(input_ids=torch.tensor([data[0].input_ids])).logits[0]
        second = model(input_ids=torch.tensor([data[1].input_ids])).logits[0]
    n = data[0].length
    assert torch.allclose(together[:n], first, atol=1e-4)
    assert torch.allclose(together[n : n + data[1].length], second, atol=1e-4)
