"""Which queued requests form the next batch."""

from __future__ import annotations

import pytest

from kubetune.serving.batcher import Budget, Entry, should_join, take_batch
from kubetune.serving.generation import GenerationInput, Timing

BUDGET = Budget(max_batch_size=3, max_prefill_tokens=100, max_total_tokens=1000)


def entry(adapter: str | None = None, prompt: int = 4, new: int = 8) -> Entry:
    return Entry(GenerationInput([1] * prompt, new, adapter=adapter), lambda _: None, Timing(start=0.0))


def test_the_oldest_request_leads_and_same_adapter_requests_join() -> None:
    queue = [entry("a"), entry(None), entry("a"), entry("b"), entry("a")]
    first, second, third, fourth, fifth = queue
    assert take_batch(queue, BUDGET) == [first, third, fifth]
    assert queue == [second, fourth]  # the others keep their order


def test_batch_size_is_capped() -> None:
    queue = [entry() for _ in range(5)]
    assert len(take_batch(queue, BUDGET)) == 3 and len(queue) == 2


def test_prefill_and_total_budgets_are_respected() -> None:
    queue = [entry(prompt=60), entry(prompt=50), entry(prompt=30)]
    assert [len(e.request.input_ids) for e in take_batch(queue, BUDGET)] == [60, 30]
    queue = [entry(new=600), entry(new=600), entry(new=100)]
    assert [e.request.max_new_tokens for e in take_batch(queue, BUDGET)] == [600, 100]


def test_an_oversized_lead_still_runs_alone() -> None:
    queue = [entry(prompt=500), entry()]
    assert [len(e.request.input_ids) for e in take_batch(queue, BUDGET)] == [500]


def test_cancelled_requests_are_dropped() -> None:
    queue = [entry(), entry(), entry()]
    queue[0].cancelled = True
    batch = take_batch(queue, BUDGET)
    assert len(batch) == 2 and not any(e.cancelled for e in batch) and queue == []


def test_empty_queue_gives_an_empty_batch() -> None:
    assert take_batch([], BUDGET) == []


def test_a_join_takes_nothing_when_the_oldest_request_does_not_fit() -> None:
    queue = [entry(prompt=500), entry()]
    assert take_batch(queue, BUDGET, force_lead=False) == [] and len(queue) == 2


@pytest.mark.parametrize(
    ("waiting", "running", "idle", "expected"),
    [
        (0, 1, 100, False),  # nothing waits
        (2, 2, 0, False),  # 2 < 1.2 x 2 running
        (3, 2, 0, True),  # 3 >= 1.2 x 2
        (1, 2, 19, False),  # too few waiting, prefilled recently
        (1, 2, 20, True),  # waited max_waiting_tokens steps
        (5, 3, 0, False),  # batch is full (max_batch_size 3)
    ],
)
def test_tgis_rule_for_joining_a_running_batch(waiting: int, running: int, idle: int, expected: bool) -> None:
    assert should_join(waiting, running, idle, BUDGET) is expected
