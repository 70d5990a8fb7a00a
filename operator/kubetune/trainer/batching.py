"""Batches without padding waste: length-grouped batching, or packing without cross-talk.

Each epoch's order is a pure function of (seed, epoch), so a resumed run replays exactly the
batches it had not done yet given only the data position (epoch, batch index). Without
packing, batches are formed from rows of similar length (sorted inside shuffled windows,
then the batches are shuffled), so padding to the longest row wastes little. With packing,
rows are first-fit packed into sequences of at most ``maxSeqLength`` and every row keeps its
own positions (0, 1, ...); the model then attends only within a row (transformers builds a
block-diagonal causal mask from restarting position ids when no attention mask is given).
Pure Python apart from :func:`collate`, which builds tensors.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from typing import Any

from kubetune.trainer.encoding import IGNORE, Encoded

WINDOW_BATCHES = 64  # batches per sorting window: larger wastes less padding, shuffles less
Plan = list[list[list[int]]]  # batches -> rows -> example indices


@dataclasses.dataclass(frozen=True)
class Batching:
    """How to cut the training split into micro-batches."""

    batch_size: int
    seed: int
    max_len: int
    packing: bool = False
    group_by_length: bool = True


def _rng(seed: int, epoch: int) -> random.Random:
    return random.Random(seed * 1_000_003 + epoch)


def plan_epoch(lengths: Sequence[int], how: Batching, epoch: int) -> Plan:
    """The micro-batches of one epoch, as lists of rows of example indices."""
    rng = _rng(how.seed, epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if how.packing:
        rows = _pack(order, lengths, how.max_len)
        rng.shuffle(rows)
        return [rows[i : i + how.batch_size] for i in range(0, len(rows), how.batch_size)]
    if not how.group_by_length:
        return [[[i] for i in order[k : k + how.batch_size]] for k in range(0, len(order), how.batch_size)]
    window = how.batch_size * WINDOW_BATCHES
    batches: Plan = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True)
        batches += [
            [[i] for i in chunk[k : k + how.batch_size]] for k in range(0, len(chunk), how.batch_size)
        ]
    rng.shuffle(batches)
    return batches


def _pack(order: list[int], lengths: Sequence[int], max_len: int) -> list[list[int]]:
    """First-fit packing in the shuffled order; a row never exceeds ``max_len`` tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = min(lengths[i], max_len)
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(max_len - n)
    return rows


def tokens_of(plan_batch: list[list[int]], data: Sequence[Encoded]) -> tuple[int, int]:
    """(non-padding tokens, tokens carrying loss) of one micro-batch."""
    tokens = sum(data[i].length for row in plan_batch for i in row)
    trainable = sum(data[i].trainable for row in plan_batch for i in row)
    return tokens, trainable


@dataclasses.dataclass(frozen=True)
class Position:
    """Where the data stream is: the next micro-batch is ``plan_epoch(epoch)[index]``."""

    epoch: int = 0
    index: int = 0


def stream(
    lengths: Sequence[int], how: Batching, start: Position
) -> Iterator[tuple[Position, list[list[int]]]]:
    """Micro-batches from ``start`` on, epoch after epoch, each with its own position."""
    epoch, index = start.epoch, start.index
    while True:
        plan = plan_epoch(lengths, how, epoch)
        for k in range(index, len(plan)):
            yield Position(epoch, k), plan[k]
        epoch, index = epoch + 1, 0


def collate(batch: list[list[int]], data: Sequence[Encoded], pad_id: int, *, packed: bool) -> dict[str, Any]:
    """Tensors for one micro-batch: padded rows, or packed rows with restarting positions."""
    import torch

    if data[batch[0][0]].label is not None:
        texts = [data[row[0]].input_ids for row in batch]
        longest = max(len(x) for x in texts)
        return {
            "input_ids": torch.tensor([x + [pad_id] * (longest - len(x)) for x in texts]),
            "attention_mask": torch.tensor([[1] * len(x) + [0] * (longest - len(x)) for x in texts]),
            "labels": torch.tensor([data[row[0]].label for row in batch]),
        }
    rows_ids: list[list[int]] = []
    rows_labels: list[list[int]] = []
    rows_pos: list[list[int]] = []
    for row in batch:
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for i in row:
            ids += data[i].input_ids
            labels += data[i].labels
            pos += list(range(data[i].length))
        rows_ids.append(ids)
        rows_labels.append(labels)
        rows_pos.append(pos)
    width = max(len(x) for x in rows_ids)
    pad = [width - len(x) for x in rows_ids]
    out: dict[str, Any] = {
        "input_ids": torch.tensor([x + [pad_id] * p for x, p in zip(rows_ids, pad, strict=True)]),
        "labels": torch.tensor([x + [IGNORE] * p for x, p in zip(rows_labels, pad, strict=True)]),
    }
    if packed:
        # the padding tail is its own segment (positions from 0), so no real token attends to it
        out["position_ids"] = torch.tensor([x + list(range(p)) for x, p in zip(rows_pos, pad, strict=True)])
    else:
        out["attention_mask"] = torch.tensor(
            [[1] * len(x) + [0] * p for x, p in zip(rows_ids, pad, strict=True)]
        )
    return out
