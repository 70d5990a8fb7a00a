"""A ratings file saved by the review page, checked against the export's key and counted.

The page saves ``{"kind": "kubetune-review-ratings", "exportId": ..., "reviewer": ...,
"ratings": [{"id": "q001", "choice": "left" | "right" | "tie"}, ...]}``. :func:`parse` refuses
anything else with a message naming the file and the field; :func:`check` refuses a file from
another export (its ``exportId`` differs from the key's) or naming items the export does not
have; :func:`tally` turns sides into the tuned model's wins, losses and ties through the key;
:func:`summary` builds the :class:`~kubetune.api.v1alpha1.adapter.HumanReview` record. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubetune.api.v1alpha1.adapter import HumanReview
from kubetune.review import stats
from kubetune.review.blind import Key

RATINGS_KIND = "kubetune-review-ratings"
Choice = Literal["left", "right", "tie"]


class RatingsError(ValueError):
    """A ratings file that cannot be counted; the message says which and what to do."""


class Rating(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    choice: Choice


class Ratings(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    kind: Literal["kubetune-review-ratings"]
    export_id: str = Field(alias="exportId")
    reviewer: str = ""
    ratings: list[Rating]


def parse(text: str, name: str) -> Ratings:
    """The ratings in ``text`` (the content of file ``name``)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise RatingsError(f"{name} is not JSON ({exc}); save it again from the review page") from None
    if not isinstance(raw, dict) or raw.get("kind") != RATINGS_KIND:
        raise RatingsError(
            f'{name} is not a kubetune ratings file (expected "kind": "{RATINGS_KIND}"); '
            "use the file the review page's Save button downloads"
        )
    try:
        return Ratings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RatingsError(f"{name}: field {where}: {first['msg']}") from None


def check(ratings: Ratings, key: Key, name: str) -> None:
    """Refuse ratings that do not belong to ``key``'s export, or that rate an item twice."""
    if ratings.export_id != key.export_id:
        raise RatingsError(
            f"{name} rates review export {ratings.export_id}, but the key is for export {key.export_id}; "
            f"import it with --export pointing to the directory of export {ratings.export_id}"
        )
    known = key.tuned_side()
    seen: set[str] = set()
    for r in ratings.ratings:
        if r.id not in known:
            raise RatingsError(f"{name}: item {r.id!r} is not in export {key.export_id}")
        if r.id in seen:
            raise RatingsError(f"{name}: item {r.id} is rated twice; save it again from the review page")
        seen.add(r.id)
    if not ratings.ratings:
        raise RatingsError(f"{name} has no ratings yet; rate at least one item on the review page")


def tally(files: Sequence[Ratings], key: Key) -> stats.Tally:
    """The tuned model's wins, losses and ties over every rating of every file."""
    side = key.tuned_side()
    wins = losses = ties = 0
    for f in files:
        for r in f.ratings:
            if r.choice == "tie":
                ties += 1
            elif r.choice == side[r.id]:
                wins += 1
            else:
                losses += 1
    return stats.Tally(wins=wins, losses=losses, ties=ties)


def summary(
    files: Sequence[Ratings], key: Key, *, confidence: float = 0.95, imported_at: str | None = None
) -> HumanReview:
    counts = tally(files, key)
    low, high = counts.interval(confidence)
    return HumanReview(
        export_id=key.export_id,
        wins=counts.wins,
        losses=counts.losses,
        ties=counts.ties,
        items=len(key.items),
        win_rate=round(counts.win_rate, 6),
        low=round(low, 6),
        high=round(high, 6),
        confidence=confidence,
        method="wilson",
        reviewers=sorted({f.reviewer for f in files if f.reviewer}),
        imported_at=imported_at,
    )
