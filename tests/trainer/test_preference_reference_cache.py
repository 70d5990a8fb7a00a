"""The reference log-probabilities are computed once and read back from beside the checkpoints;
a cache written for other token ids (another maxSeqLength, tokenizer or autocast dtype) is
recomputed, never trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune.trainer import distributed, formats, models
from kubetune.trainer.preference import data, reference
from kubetune.trainer.records import Row

from .test_preference_tuning import preference_rows


def _pairs(tokenizer: object, max_len: int) -> list[data.Pair]:
    rows = [Row("p.jsonl", i + 1, r) for i, r in enumerate(preference_rows()[:10])]
    examples, problems = formats.parse(rows, "preference", formats.Columns())
    assert problems == []
    return data.encode_pairs(tokenizer, examples, max_len)


def test_computed_once_read_back_and_recomputed_for_other_tokens(tiny_model: Path, tmp_path: Path) -> None:
    tokenizer = models.load_tokenizer(tiny_model)
    model = models.load_model(tiny_model, "causal", pad_token_id=tokenizer.pad_token_id, seed=0)
    pairs = _pairs(tokenizer, 64)
    train, val = pairs[:7], pairs[7:]
    pad = int(tokenizer.pad_token_id)

    got_train, got_val, cached = reference.prepare(
        model, [*train], [*val], pad, "cpu", tmp_path, distributed.SINGLE
    )
    assert not cached
    direct = reference.score(model, train, pad, "cpu")
    assert [(p.ref_chosen, p.ref_rejected) for p in reference.pairs_of(got_train)] == direct
    assert all(p.ref_chosen is not None for p in reference.pairs_of(got_val))

    # a sentinel in the file proves the second call reads it rather than recomputing
    cache = tmp_path / reference.CACHE
    stored = json.loads(cache.read_text())
    stored["train"][0] = [-1.5, -2.5]
    cache.write_text(json.dumps(stored))
    again, _, cached = reference.prepare(model, [*train], [*val], pad, "cpu", tmp_path, distributed.SINGLE)
    assert cached
    first = reference.pairs_of(again)[0]
    assert (first.ref_chosen, first.ref_rejected) == (-1.5, -2.5)

    # other token ids (a shorter maxSeqLength cuts the answers): the sentinel is not used
    short = _pairs(tokenizer, 11)
    assert short[0].sides[0].input_ids != train[0].sides[0].input_ids
    recomputed, _, cached = reference.prepare(
        model, [*short[:7]], [*short[7:]], pad, "cpu", tmp_path, distributed.SINGLE
    )
    assert not cached
    assert reference.pairs_of(recomputed)[0].ref_chosen != pytest.approx(-1.5)
    assert reference.digest(train, val) != reference.digest(train, val, "bfloat16")
