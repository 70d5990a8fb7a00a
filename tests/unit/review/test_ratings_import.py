"""A ratings file is counted through the key (sides to wins/losses/ties), and one that belongs
to another export, names unknown items, rates one twice or is not a ratings file is refused with
a message that says what to do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.api.contract.samples import Sample
from kubetune.review import blind, ratings


def key_of(seed: int = 2, n: int = 6) -> blind.Key:
    rows = [Sample(index=i, prompt=f"p{i}", base=f"b{i}", tuned=f"t{i}") for i in range(n)]
    return blind.build(rows, seed, {"runDir": "/r"})[1]


def saved(key: blind.Key, choices: list[tuple[str, str]], **extra: Any) -> str:
    body = {
        "kind": ratings.RATINGS_KIND,
        "exportId": key.export_id,
        "reviewer": "ada",
        "ratings": [{"id": i, "choice": c, "at": "2026-01-01T00:00:00Z"} for i, c in choices],
        **extra,
    }
    return json.dumps(body)


def flip(side: str) -> str:
    return "right" if side == "left" else "left"


def test_sides_become_the_tuned_models_wins_losses_and_ties() -> None:
    key = key_of()
    e = key.items
    choices = [(e[0].id, e[0].tuned), (e[1].id, e[1].tuned), (e[2].id, flip(e[2].tuned)), (e[3].id, "tie")]
    parsed = ratings.parse(saved(key, choices), "r.json")
    ratings.check(parsed, key, "r.json")
    review = ratings.summary([parsed], key, imported_at="now")
    assert (review.wins, review.losses, review.ties, review.items) == (2, 1, 1, 6)
    assert review.win_rate == pytest.approx(2.5 / 4)
    assert review.reviewers == ["ada"] and review.method == "wilson"
    assert review.low < review.win_rate < review.high


def test_several_reviewers_are_pooled() -> None:
    key = key_of()
    e = key.items
    a = ratings.parse(saved(key, [(x.id, x.tuned) for x in e]), "a")
    b = ratings.parse(saved(key, [(x.id, flip(x.tuned)) for x in e], reviewer="bo"), "b")
    review = ratings.summary([a, b], key)
    assert (review.wins, review.losses) == (6, 6) and review.win_rate == 0.5
    assert review.reviewers == ["ada", "bo"]


def test_ratings_of_another_export_are_refused_naming_both_exports() -> None:
    key, other = key_of(seed=2), key_of(seed=3)
    parsed = ratings.parse(saved(other, [(other.items[0].id, "tie")]), "r.json")
    with pytest.raises(ratings.RatingsError) as err:
        ratings.check(parsed, key, "r.json")
    assert (
        other.export_id in str(err.value) and key.export_id in str(err.value) and "--export" in str(err.value)
    )


def test_unknown_and_twice_rated_items_are_refused() -> None:
    key = key_of()
    with pytest.raises(ratings.RatingsError, match="'q999' is not in export"):
        ratings.check(ratings.parse(saved(key, [("q999", "tie")]), "r"), key, "r")
    first = key.items[0].id
    with pytest.raises(ratings.RatingsError, match=f"{first} is rated twice"):
        ratings.check(ratings.parse(saved(key, [(first, "tie"), (first, "left")]), "r"), key, "r")
    with pytest.raises(ratings.RatingsError, match="no ratings yet"):
        ratings.check(ratings.parse(saved(key, []), "r"), key, "r")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "r.json is not JSON"),
        ('{"kind": "something"}', "not a kubetune ratings file"),
        (
            '{"kind": "kubetune-review-ratings", "exportId": "x", "ratings": [{"id": "q1", "choice": "up"}]}',
            r"field ratings\.0\.choice",
        ),
        ('{"kind": "kubetune-review-ratings", "ratings": []}', "field exportId"),
    ],
)
def test_files_that_are_not_ratings_are_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ratings.RatingsError, match=message):
        ratings.parse(text, "r.json")
