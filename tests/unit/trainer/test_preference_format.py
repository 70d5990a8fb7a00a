"""Preference rows (prompt/chosen/rejected, the prompt a string or chat messages) are detected
and parsed; a pair with a missing, empty or identical side is a problem naming file, line and
field, never dropped silently."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api.v1alpha1.finetunejob import FieldMapping
from kubetune.trainer import formats
from kubetune.trainer.formats import Columns, Message
from kubetune.trainer.records import Row

PAIR = {"prompt": "2+2=", "chosen": " 4", "rejected": " 5"}
CHAT_PAIR = {
    "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
    "chosen": [{"role": "assistant", "content": "4"}],
    "rejected": "5",
}


def _rows(*data: dict[str, Any]) -> list[Row]:
    return [Row("prefs.jsonl", i + 1, d) for i, d in enumerate(data)]


@pytest.mark.parametrize("row", [PAIR, CHAT_PAIR, {"chosen": "a", "rejected": "b", "messages": []}])
def test_chosen_and_rejected_keys_mean_preference(row: dict[str, Any]) -> None:
    assert formats.detect(_rows(row), Columns()) == "preference"


def test_completion_rows_are_still_completion() -> None:
    assert formats.detect(_rows({"prompt": "a", "completion": "b"}), Columns()) == "completion"


def test_mapped_preference_columns_are_detected_and_read() -> None:
    columns = Columns.from_spec(FieldMapping(prompt="question", chosen="good", rejected="bad"))
    rows = _rows({"question": "q?", "good": " yes", "bad": " no"})
    assert formats.detect(rows, columns) == "preference"
    (ex,), problems = formats.parse(rows, "preference", columns)
    assert problems == []
    assert (ex.prompt, ex.chosen, ex.rejected) == ("q?", " yes", " no")


def test_string_and_chat_prompts_parse() -> None:
    (plain, chat), problems = formats.parse(_rows(PAIR, CHAT_PAIR), "preference", Columns())
    assert problems == []
    assert (plain.prompt, plain.chosen, plain.rejected, plain.messages) == ("2+2=", " 4", " 5", ())
    assert chat.messages == (Message("system", "Be brief."), Message("user", "2+2?"))
    assert (chat.prompt, chat.chosen, chat.rejected) == ("", "4", "5")
    assert plain.key != chat.key


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"prompt": "p", "chosen": "a"}, "missing side: field 'rejected' is missing"),
        ({"prompt": "p", "chosen": " ", "rejected": "b"}, "missing side: field 'chosen' is empty"),
        ({"prompt": "p", "chosen": None, "rejected": "b"}, "missing side: field 'chosen' is missing"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "'chosen' and 'rejected' are identical"),
        ({"chosen": "a", "rejected": "b"}, "missing field 'prompt'"),
        ({"prompt": "p", "chosen": 4, "rejected": "b"}, "field 'chosen' must be a string or a list"),
        (
            {"prompt": "p", "chosen": [{"role": "user", "content": "x"}], "rejected": "b"},
            "field 'chosen' must hold only assistant messages",
        ),
        (
            {
                "prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                "chosen": "x",
                "rejected": "y",
            },
            "field 'prompt' ends with an assistant message",
        ),
        (
            {"prompt": [{"role": "judge", "content": "q"}], "chosen": "x", "rejected": "y"},
            "role 'judge' is unknown",
        ),
    ],
)
def test_broken_pairs_are_problems_with_file_line_and_reason(row: dict[str, Any], reason: str) -> None:
    examples, problems = formats.parse(_rows(PAIR, row), "preference", Columns())
    assert len(examples) == 1
    (problem,) = problems
    assert (problem.file, problem.line) == ("prefs.jsonl", 2)
    assert reason in problem.reason, problem.reason
