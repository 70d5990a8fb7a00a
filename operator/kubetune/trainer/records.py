"""Reading dataset files into rows, keeping the file and line of every row.

JSONL (one object per line) and JSON arrays of objects are accepted, with or without a UTF-8
byte-order mark. Nothing is skipped silently: every line that is not UTF-8, not valid JSON or
not an object becomes a :class:`RowProblem` with file, line and reason, and the preflight fails
on them. This module knows nothing about dataset formats (see :mod:`kubetune.trainer.formats`)
and does no tokenisation.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Row:
    """One JSON object of a dataset file."""

    file: str
    line: int
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """Why one row (or a whole file) cannot be used."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def read(path: Path, *, display: str | None = None) -> tuple[list[Row], list[RowProblem]]:
    """Rows and problems of one file; ``display`` is the name used in messages."""
    name = display or str(path)
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        return [], [RowProblem(name, 1, "file is empty; expected JSONL rows or a JSON array")]
    if raw.lstrip()[:1] == b"[":
        return _read_array(raw, name)
    return _read_lines(raw, name)


def _describe(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _read_lines(raw: bytes, name: str) -> tuple[list[Row], list[RowProblem]]:
    rows: list[Row] = []
    problems: list[RowProblem] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                RowProblem(
                    name, number, f"not UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})"
                )
            )
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(name, number, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(value, dict):
            problems.append(RowProblem(name, number, f"expected a JSON object, got {_describe(value)}"))
            continue
        rows.append(Row(name, number, value))
    return rows, problems


def _read_array(raw: bytes, name: str) -> tuple[list[Row], list[RowProblem]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [RowProblem(name, line, f"not UTF-8 (byte 0x{raw[exc.start]:02x})")]
    decoder = json.JSONDecoder()
    rows: list[Row] = []
    problems: list[RowProblem] = []
    pos = text.index("[") + 1
    index = 0
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            problems.append(RowProblem(name, text.count("\n") + 1, "invalid JSON: unterminated array"))
            break
        if text[pos] == "]" and index == 0:
            break
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(name, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            break  # the rest of an array cannot be located reliably after a syntax error
        if isinstance(value, dict):
            rows.append(Row(name, line, value))
        else:
            problems.append(
                RowProblem(name, line, f"element {index}: expected a JSON object, got {_describe(value)}")
            )
        index += 1
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            trailing = text[pos + 1 :].strip()
            if trailing:
                where = text.count("\n", 0, pos) + 1
                problems.append(RowProblem(name, where, "invalid JSON: extra data after the array"))
            break
        where = text.count("\n", 0, min(pos, len(text))) + 1
        problems.append(RowProblem(name, where, "invalid JSON: expected ',' or ']' between array elements"))
        break
    return rows, problems


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
