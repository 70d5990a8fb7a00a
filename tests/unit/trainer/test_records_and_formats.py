"""Dataset rows are read with their line numbers, formats are detected, and every bad row is
reported with file, line and reason (never skipped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune.trainer import formats, records
from kubetune.trainer.errors import UserError
from kubetune.trainer.formats import Columns


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_jsonl_rows_keep_their_line_numbers_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.jsonl", b'{"a": 1}\n\n{"a": 2}\n')
    rows, problems = records.read(path)
    assert [(r.line, r.data["a"]) for r in rows] == [(1, 1), (3, 2)]
    assert problems == []


def test_json_array_elements_get_the_line_they_start_on(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.json", b'[\n  {"a": 1},\n\n  {"a": 2}\n]\n')
    rows, problems = records.read(path)
    assert [(r.line, r.data["a"]) for r in rows] == [(2, 1), (4, 2)]
    assert problems == []


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    rows, problems = records.read(_write(tmp_path, "d.jsonl", b'\xef\xbb\xbf{"a": 1}\n'))
    assert len(rows) == 1 and not problems


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b'{"a": 1}\n{"a": \n', 2, "invalid JSON"),
        (b'{"a": 1}\n[1, 2]\n', 2, "expected a JSON object, got an array"),
        (b'{"a": 1}\n{"a": "\xff"}\n', 2, "not UTF-8 (byte 0xff"),
        (b"  \n", 1, "file is empty"),
        (b'[{"a": 1}, {"a": 2} {"a": 3}]', 1, "expected ',' or ']'"),
        (b'[\n{"a": 1},\n"x"\n]', 3, "element 1: expected a JSON object, got a string"),
    ],
)
def test_bad_rows_are_reported_with_line_and_reason(
    tmp_path: Path, data: bytes, line: int, reason: str
) -> None:
    _, problems = records.read(_write(tmp_path, "d.jsonl", data), display="d.jsonl")
    assert len(problems) == 1
    assert problems[0].line == line and reason in problems[0].reason
    assert str(problems[0]).startswith(f"d.jsonl:{line}: ")


def _rows(*objs: dict[str, object]) -> list[records.Row]:
    return [records.Row("f", i + 1, o) for i, o in enumerate(objs)]


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        ({"messages": []}, "chat"),
        ({"instruction": "a", "output": "b"}, "instruction"),
        ({"prompt": "a", "completion": "b"}, "completion"),
        ({"text": "a", "label": "x"}, "classification"),
        ({"text": "a"}, "text"),
    ],
)
def test_format_is_detected_from_the_keys(row: dict[str, object], fmt: str) -> None:
    assert formats.detect(_rows(row), Columns()) == fmt


def test_detection_honours_the_field_mapping() -> None:
    assert (
        formats.detect(_rows({"body": "a", "queue": "b"}), Columns(text="body", label="queue"))
        == "classification"
    )


def test_undetectable_rows_name_their_keys_and_the_fix() -> None:
    with pytest.raises(UserError, match=r"keys \(foo\).*spec.dataset.format"):
        formats.detect(_rows({"foo": 1}), Columns())


@pytest.mark.parametrize(
    ("fmt", "row", "reason"),
    [
        ("instruction", {"instruction": "a"}, "missing field 'output'"),
        ("instruction", {"instruction": "a", "output": " "}, "empty response"),
        ("instruction", {"instruction": "a", "output": 3}, "must be a string"),
        ("chat", {"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
        ("chat", {"messages": [{"role": "robot", "content": "hi"}]}, "role 'robot' is unknown"),
        (
            "chat",
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]},
            "empty response",
        ),
        ("chat", {"messages": "hello"}, "non-empty list"),
        ("completion", {"prompt": "a", "completion": ""}, "empty response"),
        ("classification", {"text": "a", "label": None}, "missing field 'label'"),
        ("classification", {"text": "a", "label": True}, "string or an integer"),
        ("text", {"text": ""}, "is empty"),
    ],
)
def test_rows_that_do_not_fit_the_format_are_problems(
    fmt: formats.Format, row: dict[str, object], reason: str
) -> None:
    examples, problems = formats.parse(_rows({"other": 1}, row), fmt, Columns())
    assert len(problems) == 2 or reason in problems[-1].reason
    assert problems[-1].line == 2 and reason in problems[-1].reason, problems
    assert examples == []


def test_openai_content_parts_and_mapped_columns_are_read() -> None:
    msgs = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "yo"},
    ]
    examples, problems = formats.parse(_rows({"conv": msgs}), "chat", Columns(messages="conv"))
    assert not problems and examples[0].messages[0].content == "hi"


def test_duplicate_keys_ignore_the_location() -> None:
    a, b = formats.parse(
        _rows({"instruction": "a", "output": "b"}, {"instruction": "a", "output": "b"}),
        "instruction",
        Columns(),
    )[0]
    assert a.key == b.key and a.where != b.where


def test_integer_labels_sort_numerically() -> None:
    examples, _ = formats.parse(
        _rows(*({"text": "t", "label": n} for n in (10, 2, 1))), "classification", Columns()
    )
    assert formats.label_names(examples) == ["1", "2", "10"]
    assert json.dumps(formats.label_names(examples))
