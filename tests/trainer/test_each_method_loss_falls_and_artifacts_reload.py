"""Every CPU method trains the tiny Llama (loss falls), and what it exports reloads, scores the
same held-out loss as reported, and generates; adapters are the peft types they claim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune.trainer import dataset, evaluate, pipeline, progress
from kubetune.trainer import spec as job_spec

CASES: dict[str, tuple[dict[str, Any], str | None]] = {
    # method block, learning rate override, expected peft_type (None: a whole model)
    "lora": ({"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}}, "LORA"),
    "dora": ({"type": "dora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}}, "LORA"),
    "full": ({"type": "full"}, None),
    "ia3": ({"type": "ia3"}, "IA3"),
    "prompt-tuning": ({"type": "prompt-tuning", "promptTuning": {"numVirtualTokens": 8}}, "PROMPT_TUNING"),
    "prefix-tuning": ({"type": "prefix-tuning", "prefixTuning": {"numVirtualTokens": 8}}, "PREFIX_TUNING"),
}
LEARNING_RATES = {"full": 0.003, "ia3": 0.05, "prompt-tuning": 0.05, "prefix-tuning": 0.01}


@pytest.mark.parametrize("method", list(CASES))
def test_method_loss_falls_and_export_reloads(
    method: str, write_spec: Any, tiny_model: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    block, peft_type = CASES[method]
    hp = {"learningRate": LEARNING_RATES.get(method, 0.01)}
    job = job_spec.load(write_spec(spec={"method": block, "hyperparameters": hp}, name=method))
    sink = progress.ListSink()
    out = tmp_path / "out"
    result = pipeline.run(job, pipeline.Options(output_dir=out), sink)
    assert result.outcome == "Succeeded", result.message

    steps = [e for e in sink.events if isinstance(e, progress.ProgressEvent)]
    assert steps[-1].step == steps[-1].total_steps == result.training.steps  # type: ignore[union-attr]
    assert steps[-1].loss < steps[0].loss - 1.0, f"{method}: loss {steps[0].loss} -> {steps[-1].loss}"
    loss = next(m for m in result.metrics if m.name == "loss")
    assert loss.base is not None and loss.tuned < loss.base - 0.5, loss

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    if peft_type is None:
        assert result.artifacts and result.artifacts.model and not result.artifacts.adapter
        model = AutoModelForCausalLM.from_pretrained(result.artifacts.model)
    else:
        assert result.artifacts and result.artifacts.adapter
        adapter = Path(result.artifacts.adapter)
        config = json.loads((adapter / "adapter_config.json").read_text())
        assert config["peft_type"] == peft_type
        assert bool(config.get("use_dora")) == (method == "dora")
        assert (adapter / "adapter_model.safetensors").is_file()
        model = PeftModel.from_pretrained(base, adapter)
        assert PeftConfig.from_pretrained(adapter).peft_type.value == peft_type

    # the reloaded artifact scores exactly the held-out loss the run reported
    prepared = dataset.encode(dataset.load(job.spec, base_dir=job.base_dir), job.spec, tokenizer)
    reloaded, _ = evaluate.mean_loss(model, prepared.validation, tokenizer.pad_token_id, "cpu")
    assert reloaded == pytest.approx(loss.tuned, abs=1e-3)

    prompt = tokenizer(prepared.validation_rendered[0].prompt, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(
            **prompt, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    assert generated.shape[1] > prompt["input_ids"].shape[1]
    card = json.loads((out / "model-card.json").read_text())
    assert card["method"] == method and card["dataset"]["sha256"] == result.lineage["dataset"]["sha256"]
    # the card's pictures, drawn from this run's own losses and metrics, travel with the artifact
    assert card["pictures"] == {"lossCurve": "loss-curve.png", "metrics": "metrics.png"}
    artifact_dir = Path(result.artifacts.adapter or result.artifacts.model or "")
    for name in card["pictures"].values():
        assert (artifact_dir / name).read_bytes() == (out / name).read_bytes()
        assert f"]({name})" in (artifact_dir / "README.md").read_text()
