"""The blind export: seeded and reproducible, both sides used, no side revealed in what the
reviewer sees, and an export id that changes with the seed or any shown text."""

from __future__ import annotations

import json
from collections import Counter

from kubetune.api.contract.samples import Sample
from kubetune.review import blind, page


def rows(n: int = 40, *, with_base: bool = True) -> list[Sample]:
    return [
        Sample(
            index=i,
            prompt=f"p{i}",
            reference=f"r{i}",
            base=f"base{i}" if with_base else None,
            tuned=f"tuned{i}",
        )
        for i in range(n)
    ]


def test_same_rows_and_seed_give_the_same_export_byte_for_byte() -> None:
    a_items, a_key = blind.build(rows(), 5, {"runDir": "/r"})
    b_items, b_key = blind.build(rows(), 5, {"runDir": "/r"})
    assert blind.items_jsonl(a_items, a_key) == blind.items_jsonl(b_items, b_key)
    assert blind.key_json(a_key) == blind.key_json(b_key)
    assert page.render(a_items, a_key) == page.render(b_items, b_key)


def test_another_seed_gives_another_order_sides_and_export_id() -> None:
    a_items, a_key = blind.build(rows(), 5, {})
    b_items, b_key = blind.build(rows(), 6, {})
    assert a_key.export_id != b_key.export_id
    assert [i.prompt for i in a_items] != [i.prompt for i in b_items]
    assert [e.tuned for e in a_key.items] != [e.tuned for e in b_key.items]


def test_prompts_are_shuffled_and_tuned_answers_land_on_both_sides() -> None:
    _, key = blind.build(rows(), 1, {})
    assert sorted(e.index for e in key.items) == list(range(40))
    assert [e.index for e in key.items] != list(range(40))
    sides = Counter(e.tuned for e in key.items)
    assert sides["left"] >= 10 and sides["right"] >= 10


def test_the_key_says_where_each_answer_went() -> None:
    items, key = blind.build(rows(), 3, {})
    for item, entry in zip(items, key.items, strict=True):
        shown_tuned = item.left if entry.tuned == "left" else item.right
        shown_base = item.right if entry.tuned == "left" else item.left
        assert shown_tuned == f"tuned{entry.index}" and shown_base == f"base{entry.index}"
        assert item.prompt == f"p{entry.index}"


def test_reviewer_files_never_carry_the_side_of_the_tuned_answer() -> None:
    items, key = blind.build(rows(), 3, {})
    for line in blind.items_jsonl(items, key).splitlines():
        row = json.loads(line)
        assert set(row) == {"exportId", "id", "prompt", "reference", "left", "right"}
    html = page.render(items, key)
    assert '"tuned"' not in html and "index" not in html.split("review-data")[1]


def test_export_id_changes_when_any_shown_text_changes() -> None:
    _, key = blind.build(rows(), 3, {})
    edited = rows()
    edited[7] = edited[7].model_copy(update={"tuned": "tuned7!"})
    _, other = blind.build(edited, 3, {})
    assert key.export_id != other.export_id


def test_limit_keeps_the_first_prompts_of_the_shuffled_order() -> None:
    _, full = blind.build(rows(), 9, {})
    items, key = blind.build(rows(), 9, {}, limit=5)
    assert len(items) == 5 and [e.index for e in key.items] == [e.index for e in full.items[:5]]


def test_rows_without_a_base_answer_are_left_out() -> None:
    items, _ = blind.build([*rows(3), *rows(2, with_base=False)], 0, {})
    assert len(items) == 3
    assert blind.build(rows(4, with_base=False), 0, {})[0] == []


def test_page_data_cannot_end_its_script_block() -> None:
    sample = Sample(index=0, prompt="</script><script>alert(1)</script>", base="a", tuned="b")
    items, key = blind.build([sample], 0, {})
    html = page.render(items, key)
    assert html.count("</script>") == 2  # the data block's and the code block's own
    data = html.split('<script id="review-data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(data)["items"][0]["prompt"] == sample.prompt
