"""The engine in-process: batched and joined sequences decode exactly as they would alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune.serving import config
from kubetune.serving.engine import Engine
from kubetune.serving.generation import GenerationInput, Step

from .conftest import ADAPTER

PROMPTS = [
    "customers ask how to reset a password and change an email address",
    "refunds",
    "close an account",
    "the support team answers billing questions about invoices",
]


@pytest.fixture(scope="module")
def engine(tiny_model: Path, adapter_dir: Path) -> Engine:
    return Engine.load(str(tiny_model), [config.Adapter(ADAPTER, adapter_dir)])


def _request(engine: Engine, prompt: str, new: int, adapter: str | None = None) -> GenerationInput:
    return GenerationInput(engine.tokenize(prompt), new, adapter=adapter)


def _run(
    engine: Engine, requests: list[GenerationInput], joins: dict[int, list[GenerationInput]] | None = None
) -> dict[int, list[int]]:
    """Token ids per key; ``joins[n]`` are handed in at the n-th join call (keys continue)."""
    out: dict[int, list[int]] = {}
    calls = 0
    next_key = len(requests)

    def emit(key: int, step: Step) -> None:
        out.setdefault(key, []).append(step.token.id)

    def join(running: int, budget: int, idle: int) -> list[tuple[int, GenerationInput]]:
        nonlocal calls, next_key
        calls += 1
        pairs = []
        for request in (joins or {}).get(calls, []):
            pairs.append((next_key, request))
            next_key += 1
        return pairs

    engine.generate(list(enumerate(requests)), emit, join=join)
    return out


def _alone(engine: Engine, request: GenerationInput) -> list[int]:
    return _run(engine, [request])[0]


@pytest.mark.parametrize("adapter", [None, ADAPTER])
def test_a_padded_batch_matches_single_runs(engine: Engine, adapter: str | None) -> None:
    requests = [_request(engine, p, 6 + n, adapter) for n, p in enumerate(PROMPTS)]
    batched = _run(engine, requests)
    assert [batched[n] for n in range(len(requests))] == [_alone(engine, r) for r in requests]


def test_requests_joining_a_decoding_batch_match_single_runs(engine: Engine) -> None:
    long = _request(engine, PROMPTS[0], 16)
    early = _request(engine, PROMPTS[1], 3)
    joiners = [_request(engine, PROMPTS[2], 8), _request(engine, PROMPTS[3], 5)]
    late = [_request(engine, PROMPTS[1], 4)]
    # join after the 2nd decode step, and again after the 9th (when `early` has left the batch)
    result = _run(engine, [long, early], joins={2: joiners, 9: late})
    expected = [_alone(engine, r) for r in (long, early, *joiners, *late)]
    assert [result[k] for k in range(5)] == expected
    assert [len(result[k]) for k in range(5)] == [16, 3, 8, 5, 4]


def test_one_batch_serves_one_adapter(engine: Engine) -> None:
    with pytest.raises(ValueError, match="one adapter"):
        engine.generate(
            [(0, _request(engine, "a", 2)), (1, _request(engine, "a", 2, ADAPTER))], lambda k, s: None
        )
