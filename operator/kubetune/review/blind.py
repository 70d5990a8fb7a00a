"""A blind review export: which held-out prompts, in which order, with the tuned answer on which side.

:func:`build` takes the run's sample rows (``samples.jsonl``: prompt, reference, base, tuned)
and a seed, shuffles the prompts and flips a coin per prompt for the tuned answer's side, with
one :class:`random.Random` seeded by ``seed``: the same rows and seed give the same export,
byte for byte. The reviewer sees :class:`Item` rows (left, right; never which is tuned); the
:class:`Key` says, per item, which side is tuned and is kept apart from the page. The export id
is a digest of the seed and the items as shown, so a ratings file names the exact export it
rates and cannot be counted against another one. Pure: no files, clock or global randomness.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kubetune.api.contract.samples import Sample

Side = Literal["left", "right"]
KEY_KIND = "kubetune-review-key"
ITEMS_FILE = "items.jsonl"
KEY_FILE = "key.json"
PAGE_FILE = "review.html"


class Item(BaseModel):
    """One prompt as the reviewer sees it: two answers, sides only."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Item id within the export (q001, q002, ...).")
    prompt: str
    reference: str = ""
    left: str
    right: str


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    index: int = Field(description="The sample's position in the run's validation split.")
    tuned: Side = Field(description="The side the tuned model's answer is shown on.")


class Key(BaseModel):
    """The order key: how to read a ratings file of this export."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: Literal["kubetune-review-key"] = "kubetune-review-key"
    export_id: str = Field(alias="exportId")
    seed: int
    source: dict[str, Any] = Field(description="Where the samples came from (run directory or Adapter).")
    items: list[KeyEntry]

    def tuned_side(self) -> dict[str, Side]:
        return {e.id: e.tuned for e in self.items}


def export_id(seed: int, items: Sequence[Item]) -> str:
    """16 hex digits of the SHA-256 of the seed and the items as shown."""
    body = json.dumps([seed, [i.model_dump() for i in items]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def build(
    samples: Sequence[Sample], seed: int, source: dict[str, Any], limit: int | None = None
) -> tuple[list[Item], Key]:
    """The blind items and their key. Rows without a base answer are left out (the caller says
    so when none is left); ``limit`` keeps the first ``limit`` prompts of the shuffled order."""
    rows = [s for s in samples if s.base is not None]
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    if limit is not None:
        order = order[:limit]
    items: list[Item] = []
    entries: list[KeyEntry] = []
    width = max(3, len(str(len(order))))
    for n, k in enumerate(order, start=1):
        row = rows[k]
        assert row.base is not None
        tuned: Side = "left" if rng.random() < 0.5 else "right"
        left, right = (row.tuned, row.base) if tuned == "left" else (row.base, row.tuned)
        item_id = f"q{n:0{width}d}"
        items.append(Item(id=item_id, prompt=row.prompt, reference=row.reference, left=left, right=right))
        entries.append(KeyEntry(id=item_id, index=row.index, tuned=tuned))
    key = Key(export_id=export_id(seed, items), seed=seed, source=source, items=entries)
    return items, key


def items_jsonl(items: Sequence[Item], key: Key) -> str:
    """The blind items as JSONL, each row carrying the export id (no sides revealed)."""
    return "".join(
        json.dumps({"exportId": key.export_id, **i.model_dump()}, ensure_ascii=False) + "\n" for i in items
    )


def key_json(key: Key) -> str:
    return json.dumps(key.model_dump(by_alias=True), indent=2, ensure_ascii=False) + "\n"
