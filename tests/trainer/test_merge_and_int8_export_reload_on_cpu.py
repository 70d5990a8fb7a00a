"""``merge: true`` writes a plain transformers model equal to base + adapter, and
``quantize: int8`` writes a weight-only int8 model that loads and generates on CPU and stays
close to the merged one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubetune.trainer import pipeline, progress, quantize
from kubetune.trainer import spec as job_spec


def test_merged_and_int8_exports_match_the_adapter(write_spec: Any, tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = write_spec(spec={"output": {"merge": True, "quantize": "int8"}})
    result = pipeline.run(
        job_spec.load(spec), pipeline.Options(output_dir=tmp_path / "out"), progress.NullSink()
    )
    assert result.outcome == "Succeeded", result.message
    arts = result.artifacts
    assert arts is not None and arts.adapter and arts.merged and arts.int8

    tokenizer = AutoTokenizer.from_pretrained(arts.merged)
    batch = tokenizer(["### Instruction:\nWhat does the cat say?\n\n### Response:\n"], return_tensors="pt")
    with torch.no_grad():
        adapted = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(tiny_model), arts.adapter
        ).eval()
        merged = AutoModelForCausalLM.from_pretrained(arts.merged).eval()
        int8 = quantize.load(Path(arts.int8))
        want = adapted(**batch).logits
        got_merged = merged(**batch).logits
        got_int8 = int8(**batch).logits
    assert torch.allclose(got_merged, want, atol=1e-4)
    agree = (got_int8.argmax(-1) == want.argmax(-1)).float().mean().item()
    assert agree >= 0.9, agree
    assert (got_int8 - want).abs().max().item() < 0.1 * want.abs().max().item()

    meta = json.loads((Path(arts.int8) / "quantization.json").read_text())
    assert meta["modules"] and all("embed" not in m for m in meta["modules"])
    fp32 = (Path(arts.merged) / "model.safetensors").stat().st_size
    q = (Path(arts.int8) / quantize.WEIGHTS).stat().st_size
    assert q < 0.6 * fp32, (q, fp32)
    generated = int8.generate(**batch, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert (
        generated.shape[1] == batch["input_ids"].shape[1] + 6
        or tokenizer.eos_token_id in generated[0].tolist()
    )
