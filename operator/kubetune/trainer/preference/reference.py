"""The reference model's log-probabilities, computed once before training and cached.

The reference of DPO and IPO is the base model. Its scores of every pair's answers are taken
on the very model training starts from, before the method wraps it: for an adapter that is
exactly the model with the adapter disabled, and full fine-tuning needs no second copy of the
weights. They are written beside the checkpoints (``reference-logps.json``, with a digest of the
token ids they belong to), so a resumed run reads them back instead of recomputing; a digest
that does not match (another tokenizer, another maxSeqLength) recomputes. Float values
round-trip JSON exactly, so a resumed run trains on the same numbers. Under torchrun rank 0
computes or reads them and sends them to the other ranks. The held-out pairs are scored too:
they are the base side of the reward margin. The training pairs are scored under the
training's autocast dtype (bf16/fp16 on a GPU), as the policy will be, so that the loss starts
at its no-preference value; the held-out pairs in full precision, as evaluation scores them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubetune.trainer import distributed, models
from kubetune.trainer.distributed import World
from kubetune.trainer.encoding import Encoded
from kubetune.trainer.preference import logps
from kubetune.trainer.preference.data import Pair

CACHE = "reference-logps.json"
BATCH = 16

Scores = list[tuple[float, float]]


def pairs_of(rows: Sequence[Encoded]) -> list[Pair]:
    return [r for r in rows if isinstance(r, Pair)]


def _autocast(dtype: str | None, device: str) -> Any:
    import torch

    if dtype is None or not device.startswith("cuda"):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=getattr(torch, dtype))


def score(model: Any, pairs: Sequence[Pair], pad_id: int, device: str, autocast: str | None = None) -> Scores:
    """(chosen, rejected) summed log-probabilities of every pair under ``model`` (no grad),
    in batches of similar length (the order is fixed, so the result is reproducible)."""
    order = sorted(range(len(pairs)), key=lambda i: (pairs[i].length, i))
    out: dict[int, tuple[float, float]] = {}
    with models.evaluating(model), _autocast(autocast, device):
        for k in range(0, len(order), BATCH):
            idx = order[k : k + BATCH]
            batch = {n: t.to(device) for n, t in logps.collate([pairs[i] for i in idx], pad_id).items()}
            sums, _ = logps.answer_logps(model, batch)
            chosen, rejected = sums.chunk(2)
            for j, i in enumerate(idx):
                out[i] = (float(chosen[j]), float(rejected[j]))
    return [out[i] for i in range(len(pairs))]


def digest(train: Sequence[Pair], validation: Sequence[Pair], autocast: str | None = None) -> str:
    h = hashlib.sha256(f"autocast={autocast}|".encode())
    for split in (train, validation):
        for p in split:
            for side in p.sides:
                h.update(json.dumps([side.input_ids, side.labels]).encode())
        h.update(b"|")
    return h.hexdigest()


def attach(rows: Sequence[Encoded], scores: Scores | None) -> list[Encoded]:
    """Copies of the pairs of ``rows`` carrying their reference scores."""
    if scores is None:
        return list(rows)
    pairs = pairs_of(rows)
    return [
        dataclasses.replace(p, ref_chosen=c, ref_rejected=r) for p, (c, r) in zip(pairs, scores, strict=True)
    ]


def load_or_compute(
    model: Any,
    train: list[Pair],
    validation: list[Pair],
    pad_id: int,
    device: str,
    cache_dir: Path | None,
    *,
    with_train: bool = True,
    autocast: str | None = None,
) -> tuple[dict[str, Scores | None], bool]:
    """The scores of both splits and whether they were read from the cache."""
    key = digest(train, validation, autocast)
    cache = cache_dir / CACHE if cache_dir is not None else None
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("digest") == key and (data.get("train") is not None or not with_train):
            return {
                "train": [tuple(x) for x in data["train"]] if data.get("train") is not None else None,
                "validation": [tuple(x) for x in data["validation"]],
            }, True
    scores: dict[str, Scores | None] = {
        "train": score(model, train, pad_id, device, autocast) if with_train else None,
        "validation": score(model, validation, pad_id, device),
    }
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"digest": key, **scores}), encoding="utf-8")
        tmp.replace(cache)
    return scores, False


def prepare(
    model: Any,
    train: list[Encoded],
    validation: list[Encoded],
    pad_id: int,
    device: str,
    cache_dir: Path | None,
    world: World,
    *,
    with_train: bool = True,
    autocast: str | None = None,
) -> tuple[list[Encoded], list[Encoded], bool]:
    """Both splits with reference scores attached (every rank), and whether rank 0 read them
    from the cache."""
    found: tuple[dict[str, Scores | None], bool] | None = None
    if world.main:
        found = load_or_compute(
            model,
            pairs_of(train),
            pairs_of(validation),
            pad_id,
            device,
            cache_dir,
            with_train=with_train,
            autocast=autocast,
        )
    if world.distributed:
        found = distributed.broadcast(found, world)
    assert found is not None
    scores, cached = found
    return attach(train, scores["train"]), attach(validation, scores["validation"]), cached
