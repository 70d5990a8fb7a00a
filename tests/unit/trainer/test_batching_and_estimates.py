"""Batches are a pure function of (seed, epoch), length grouping wastes little padding, packing
never overflows maxSeqLength, a stream restarted at a position replays the same batches, and
the preflight's estimates and budget arithmetic hold."""

from __future__ import annotations

import itertools
import random

from kubetune.trainer import batching, preflight
from kubetune.trainer.batching import Batching, Position


def _lengths(n: int = 400, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(8, 256) for _ in range(n)]


def _padding(plan: batching.Plan, lengths: list[int]) -> float:
    padded = sum(len(b) * max(lengths[r[0]] for r in b) for b in plan)
    return 1 - sum(lengths) / padded


def test_each_epoch_uses_every_row_once_and_is_reproducible() -> None:
    lengths = _lengths()
    how = Batching(batch_size=8, seed=5, max_len=256)
    plan = batching.plan_epoch(lengths, how, 3)
    assert sorted(i for b in plan for r in b for i in r) == list(range(len(lengths)))
    assert plan == batching.plan_epoch(lengths, how, 3)
    assert plan != batching.plan_epoch(lengths, how, 4)


def test_length_grouping_wastes_far_less_padding_than_random_batches() -> None:
    lengths = _lengths()
    grouped = batching.plan_epoch(lengths, Batching(batch_size=8, seed=1, max_len=256), 0)
    random_batches = batching.plan_epoch(
        lengths, Batching(batch_size=8, seed=1, max_len=256, group_by_length=False), 0
    )
    assert _padding(grouped, lengths) < 0.05 < 0.3 < _padding(random_batches, lengths)


def test_packing_fills_rows_without_exceeding_the_limit() -> None:
    lengths = _lengths()
    plan = batching.plan_epoch(lengths, Batching(batch_size=4, seed=2, max_len=512, packing=True), 0)
    rows = [r for b in plan for r in b]
    assert all(sum(lengths[i] for i in r) <= 512 for r in rows)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert sum(lengths) / (len(rows) * 512) > 0.85


def test_stream_restarted_at_a_position_replays_the_same_batches() -> None:
    lengths = _lengths(50)
    how = Batching(batch_size=4, seed=9, max_len=256)
    full = list(itertools.islice(batching.stream(lengths, how, Position()), 40))
    pos, _ = full[17]
    resumed = list(itertools.islice(batching.stream(lengths, how, Position(pos.epoch, pos.index)), 23))
    assert resumed == full[17:]
    assert full[13][0] == Position(1, 0)  # 13 batches per epoch


def test_steps_account_for_accumulation_and_max_steps() -> None:
    assert preflight.steps_for(10, 3.0, None, 4) == (3, 8)
    assert preflight.steps_for(10, 3.0, 5, 1) == (10, 5)
    assert preflight.steps_for(10, 0.5, None, 1) == (10, 5)
