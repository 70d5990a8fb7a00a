"""kubetune's trainer against a plain ``transformers.Trainer`` + ``peft`` baseline: same model,
same tokenised data and label masks, same hyperparameters; effective tokens/s and eval loss.

    .venv/bin/python benchmarks/trainer/bench.py --rows 400 --epochs 2

The base model is a small random Llama built with :mod:`kubetune.trainer.tiny` (the benchmark
measures the training loop, not a model). The dataset is instruction rows of widely varying
length (support tickets padded with 0-24 filler sentences), as real instruction data is. Both
sides get the exact same ``input_ids``/``labels`` (kubetune's encoding) and the same LoRA
settings, seed, learning rate, schedule, batch size and epochs:

- baseline: ``Trainer`` with its defaults for this setup (random batches,
  ``DataCollatorForSeq2Seq`` padding each batch to its longest row);
- kubetune: :func:`kubetune.trainer.loop.train` through the normal pipeline (length-grouped
  batches; ``--packing`` switches to packed rows with per-sequence attention).

"Effective tokens/s" counts non-padding tokens processed per second of training (model loading,
preflight and evaluation excluded on both sides); "per CPU-second" divides by the process's CPU
time instead, which other work on a shared machine disturbs less. With ``--repeat N`` the sides
alternate and the median and best runs are reported. Eval loss is the token-mean loss on the
same held-out rows for both, computed by the same function. Results are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml

from kubetune.trainer import dataset, evaluate, models, pipeline, progress, tiny
from kubetune.trainer import spec as job_spec

TEAMS = {
    "billing": ["I was charged twice", "my invoice is wrong", "I need a refund", "the payment failed"],
    "technical": [
        "the app crashes on start",
        "I get an error 500",
        "sync stopped working",
        "the API rejects my token",
    ],
    "account": [
        "I cannot log in",
        "the password reset mail never came",
        "please delete my account",
        "two factor locked me out",
    ],
    "shipping": [
        "my parcel has not arrived",
        "the tracking number is invalid",
        "the box arrived damaged",
        "I got the wrong item",
    ],
}
FILLER = [
    "I have been a customer for many years.",
    "This happened after the latest update.",
    "My colleague saw the same thing last week.",
    "I already tried restarting everything twice.",
    "The weather here has been terrible, by the way.",
    "Please answer as soon as you can because my manager is asking.",
    "I am writing from my phone so excuse the typos.",
    "Our team depends on this every single morning.",
]


def make_rows(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    names = sorted(TEAMS)
    for i in range(count):
        team = names[i % len(names)]
        sentences = [rng.choice(FILLER) for _ in range(rng.randint(0, 24))]
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(TEAMS[team]) + ".")
        reply = f"Team: {team}. We have routed your ticket and will reply within one day."
        rows.append(
            {"instruction": "Route this support ticket.", "input": " ".join(sentences), "output": reply}
        )
    rng.shuffle(rows)
    return rows


def write_job(where: Path, model: Path, args: argparse.Namespace) -> Path:
    body = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "bench"},
        "spec": {
            "baseModel": {"uri": str(model)},
            "dataset": {"uri": "./train.jsonl", "format": "instruction", "validationSplit": 0.1},
            "method": {
                "type": "lora",
                "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "targetModules": ["all-linear"]},
            },
            "hyperparameters": {
                "epochs": args.epochs,
                "learningRate": args.lr,
                "batchSize": args.batch_size,
                "maxSeqLength": 512,
                "scheduler": "linear",
                "warmupRatio": 0.0,
                "weightDecay": 0.0,
                "seed": args.seed,
                "packing": args.packing,
            },
            "resources": {"gpusPerNode": 0},
            "evaluation": {"metrics": ["loss"], "compareToBase": False},
            "checkpointEverySteps": 100000,
        },
    }
    path = where / "job.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def run_kubetune(job_file: Path, out: Path) -> dict[str, Any]:
    from kubetune.trainer import loop

    sink = progress.ListSink()
    cpu: list[float] = []
    original = loop.train

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            cpu.append(time.process_time() - started)

    loop.train = timed  # type: ignore[assignment]
    try:
        result = pipeline.run(job_spec.load(job_file), pipeline.Options(output_dir=out), sink)
    finally:
        loop.train = original  # type: ignore[assignment]
    assert result.outcome == "Succeeded", result.message
    assert result.training is not None
    loss = next(m.tuned for m in result.metrics if m.name == "loss")
    padded = _kubetune_padded_tokens(job_file, result.training.steps)
    tps = result.training.tokens_per_second or 0.0
    real = tps * result.training.train_seconds
    return {
        "steps": result.training.steps,
        "train_seconds": result.training.train_seconds,
        "tokens_per_second": tps,
        "tokens_per_cpu_second": round(real / cpu[0], 1),
        "padded_tokens_per_second": round(padded / result.training.train_seconds, 1),
        "padding_share": round(1 - real / padded, 4),
        "final_train_loss": result.training.final_loss,
        "eval_loss": loss,
    }


def run_baseline(job_file: Path, out: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    job = job_spec.load(job_file)
    spec, hp = job.spec, job.spec.hyperparameters
    tokenizer = models.load_tokenizer(Path(spec.base_model.uri))
    prepared = dataset.encode(dataset.load(spec, base_dir=job.base_dir), spec, tokenizer)
    train = [
        {"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * e.length}
        for e in prepared.train
    ]
    torch.manual_seed(hp.seed)
    model = AutoModelForCausalLM.from_pretrained(spec.base_model.uri)
    lora = spec.method.lora_settings()
    model = get_peft_model(
        model,
        LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    targs = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=hp.batch_size,
        num_train_epochs=hp.epochs,
        learning_rate=hp.learning_rate,
        lr_scheduler_type=hp.scheduler,
        warmup_ratio=hp.warmup_ratio,
        weight_decay=hp.weight_decay,
        max_grad_norm=hp.max_grad_norm,
        seed=hp.seed,
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    inner = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
    shapes: list[int] = []

    def collator(features: list[dict[str, Any]]) -> Any:
        batch = inner(features)
        shapes.append(int(batch["input_ids"].numel()))
        return batch

    trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=collator)
    started, cpu_started = time.perf_counter(), time.process_time()
    output = trainer.train()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    tokens = sum(e.length for e in prepared.train) * hp.epochs
    loss, _ = evaluate.mean_loss(model, prepared.validation, tokenizer.pad_token_id, "cpu")
    return {
        "steps": output.global_step,
        "train_seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 1),
        "tokens_per_cpu_second": round(tokens / cpu, 1),
        "padded_tokens_per_second": round(sum(shapes) / seconds, 1),
        "padding_share": round(1 - tokens / sum(shapes), 4),
        "final_train_loss": None,
        "eval_loss": round(loss, 6),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="kubetune trainer vs transformers.Trainer + peft")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument(
        "--packing", action="store_true", help="kubetune packs rows instead of grouping by length"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each side, alternating; medians are reported"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    models.quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        data = where / "train.jsonl"
        data.write_text(
            "".join(json.dumps(r) + "\n" for r in make_rows(args.rows, args.seed)), encoding="utf-8"
        )
        model = tiny.build(
            where / "model", data, hidden=args.hidden, layers=args.layers, heads=8, vocab_size=2048
        )
        job_file = write_job(where, model, args)
        lengths = [e.length for e in _prepared(job_file).train]
        print(
            f"rows {args.rows}, train rows {len(lengths)}, tokens/row mean {sum(lengths) / len(lengths):.0f} (min {min(lengths)}, max {max(lengths)})",
            file=sys.stderr,
        )
        baselines, ourses = [], []
        for i in range(args.repeat):
            pair = ["baseline", "kubetune"] if i % 2 == 0 else ["kubetune", "baseline"]
            for side in pair:
                if side == "baseline":
                    baselines.append(run_baseline(job_file, where / f"baseline-{i}"))
                    print(f"baseline run {i}: {baselines[-1]}", file=sys.stderr)
                else:
                    ourses.append(run_kubetune(job_file, where / f"kubetune-{i}"))
                    print(f"kubetune run {i}: {ourses[-1]}", file=sys.stderr)
    baseline, ours = _median(baselines), _median(ourses)

    def best(runs: list[dict[str, Any]], key: str) -> float:
        return float(max(r[key] for r in runs))

    report = {
        "config": vars(args) | {"json": None},
        "threads": __import__("torch").get_num_threads(),
        "baseline": baseline,
        "kubetune": ours,
        "throughput_ratio_median": round(ours["tokens_per_second"] / baseline["tokens_per_second"], 3),
        "throughput_ratio_best": round(
            best(ourses, "tokens_per_second") / best(baselines, "tokens_per_second"), 3
        ),
        "cpu_throughput_ratio_best": round(
            best(ourses, "tokens_per_cpu_second") / best(baselines, "tokens_per_cpu_second"), 3
        ),
        "eval_loss_delta": round(ours["eval_loss"] - baseline["eval_loss"], 6),
        "runs": {"baseline": baselines, "kubetune": ourses},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall-clock throughput (its numbers stay consistent together)."""
    ordered = sorted(runs, key=lambda r: r["tokens_per_second"])
    return ordered[len(ordered) // 2]


def _kubetune_padded_tokens(job_file: Path, steps: int) -> int:
    """Tokens (padding included) in the batches kubetune's loop ran: the same plan it uses."""
    import itertools

    from kubetune.trainer import batching

    job = job_spec.load(job_file)
    hp = job.spec.hyperparameters
    data = _prepared(job_file).train
    how = batching.Batching(
        batch_size=hp.batch_size, seed=hp.seed, max_len=hp.max_seq_length, packing=hp.packing
    )
    micro = itertools.islice(
        batching.stream([e.length for e in data], how, batching.Position()),
        steps * hp.gradient_accumulation_steps,
    )
    total = 0
    for _, rows in micro:
        widths = [sum(data[i].length for i in row) for row in rows]
        total += len(rows) * max(widths)
    return total


def _prepared(job_file: Path) -> dataset.Prepared:
    job = job_spec.load(job_file)
    tokenizer = models.load_tokenizer(Path(job.spec.base_model.uri))
    return dataset.encode(dataset.load(job.spec, base_dir=job.base_dir), job.spec, tokenizer)


if __name__ == "__main__":
    sys.exit(main())
