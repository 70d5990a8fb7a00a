"""Dataset formats: detecting them and turning rows into checked :class:`Example` objects.

Formats (DESIGN §2): ``instruction`` (instruction/input/output), ``chat`` (OpenAI-style
``messages``), ``completion`` (prompt/completion), ``text``, ``classification``
(text/label) and ``preference`` (prompt/chosen/rejected, the prompt a string or a list of
chat messages; each answer a string or a list of assistant messages); ``auto`` detects from
the keys of the first rows. Column names come from
``spec.dataset.fields``. Every row that does not fit (missing field, wrong type, empty
response, unknown role, no assistant turn, a preference pair with a missing or empty side or two
identical sides) becomes a :class:`RowProblem`; none is dropped
silently. Pure: no file access, no tokenisation.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from kubetune.api.v1alpha1.finetunejob import FieldMapping
from kubetune.trainer.errors import UserError
from kubetune.trainer.records import Row, RowProblem

Format = Literal["instruction", "chat", "completion", "text", "classification", "preference"]
GENERATION_FORMATS: frozenset[str] = frozenset({"instruction", "chat", "completion"})
ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclasses.dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclasses.dataclass(frozen=True)
class Example:
    """One usable row. Only the fields of its format are set."""

    file: str
    line: int
    format: Format
    instruction: str = ""
    input: str = ""
    output: str = ""
    messages: tuple[Message, ...] = ()
    prompt: str = ""
    completion: str = ""
    text: str = ""
    label: str = ""
    chosen: str = ""  # preference: the preferred answer (prompt or messages hold the prompt)
    rejected: str = ""

    @property
    def key(self) -> str:
        """Canonical content, for exact-duplicate and overlap checks."""
        body = dataclasses.asdict(self)
        for drop in ("file", "line"):
            body.pop(drop)
        return json.dumps(body, sort_keys=True, ensure_ascii=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclasses.dataclass(frozen=True)
class Columns:
    """Column names after applying ``spec.dataset.fields``."""

    instruction: str = "instruction"
    input: str = "input"
    output: str = "output"
    messages: str = "messages"
    prompt: str = "prompt"
    completion: str = "completion"
    text: str = "text"
    label: str = "label"
    chosen: str = "chosen"
    rejected: str = "rejected"

    @classmethod
    def from_spec(cls, fields: FieldMapping) -> Columns:
        mapped = {k: v for k, v in fields.model_dump().items() if v}
        return cls(**mapped)


def detect(rows: list[Row], columns: Columns) -> Format:
    """The format of ``rows`` from the keys of the first ones; raise when nothing fits."""
    keys: set[str] = set()
    for row in rows[:20]:
        keys |= set(row.data)
    if columns.chosen in keys and columns.rejected in keys:
        return "preference"
    if columns.messages in keys:
        return "chat"
    if columns.instruction in keys and columns.output in keys:
        return "instruction"
    if columns.prompt in keys and columns.completion in keys:
        return "completion"
    if columns.text in keys and columns.label in keys:
        return "classification"
    if columns.text in keys:
        return "text"
    shown = ", ".join(sorted(keys)[:8]) or "none"
    raise UserError(
        f"spec.dataset.format is auto but the rows' keys ({shown}) match no format; set "
        "spec.dataset.format (instruction, chat, completion, text, classification, preference) and, "
        "if the "
        "columns are named differently, spec.dataset.fields"
    )


class _Bad(Exception):
    pass


def _text(data: dict[str, Any], column: str, *, required: bool = True, nonempty: bool = False) -> str:
    if column not in data or data[column] is None:
        if required:
            raise _Bad(f"missing field {column!r}")
        return ""
    value = data[column]
    if not isinstance(value, str):
        raise _Bad(f"field {column!r} must be a string, got {type(value).__name__}")
    if nonempty and not value.strip():
        raise _Bad(f"field {column!r} is empty")
    return value


def _messages(data: dict[str, Any], column: str, *, need_answer: bool = True) -> tuple[Message, ...]:
    if column not in data:
        raise _Bad(f"missing field {column!r}")
    raw = data[column]
    if not isinstance(raw, list) or not raw:
        raise _Bad(f"field {column!r} must be a non-empty list of messages")
    out: list[Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _Bad(f"{column}[{i}] must be an object with role and content")
        role = item.get("role")
        if not isinstance(role, str):
            raise _Bad(f"{column}[{i}] has no role")
        if role not in ROLES:
            raise _Bad(f"{column}[{i}].role {role!r} is unknown; use one of {', '.join(ROLES)}")
        content = item.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise _Bad(f"{column}[{i}] ({role}) has no text content")
        out.append(Message(role, content))
    if not need_answer:
        return tuple(out)
    answers = [m for m in out if m.role == "assistant"]
    if not answers:
        raise _Bad(f"{column} has no assistant message: nothing to learn from")
    for i, m in enumerate(out):
        if m.role == "assistant" and not m.content.strip():
            raise _Bad(f"empty response: {column}[{i}] (assistant) has empty content")
    return tuple(out)


def _label(data: dict[str, Any], column: str) -> str:
    if column not in data or data[column] is None:
        raise _Bad(f"missing field {column!r}")
    value = data[column]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(f"field {column!r} must be a string or an integer, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise _Bad(f"field {column!r} is empty")
    return text


def _answer(data: dict[str, Any], column: str) -> str:
    """One side of a preference pair: a string, or a list of assistant messages (TRL's
    conversational format) whose contents are joined."""
    if column not in data or data[column] is None:
        raise _Bad(f"missing side: field {column!r} is missing")
    value = data[column]
    if isinstance(value, list):
        msgs = _messages(data, column, need_answer=False)
        if any(m.role != "assistant" for m in msgs):
            raise _Bad(
                f"field {column!r} must hold only assistant messages (the prompt goes in the prompt field)"
            )
        value = "".join(m.content for m in msgs)
    if not isinstance(value, str):
        raise _Bad(
            f"field {column!r} must be a string or a list of assistant messages, got {type(value).__name__}"
        )
    if not value.strip():
        raise _Bad(f"missing side: field {column!r} is empty")
    return value


def _preference(data: dict[str, Any], proto: Example, columns: Columns) -> Example:
    chosen = _answer(data, columns.chosen)
    rejected = _answer(data, columns.rejected)
    if chosen == rejected:
        raise _Bad(
            f"fields {columns.chosen!r} and {columns.rejected!r} are identical: the pair prefers "
            "nothing; fix or drop the row"
        )
    if isinstance(data.get(columns.prompt), list):
        msgs = _messages(data, columns.prompt, need_answer=False)
        if msgs[-1].role == "assistant":
            raise _Bad(
                f"field {columns.prompt!r} ends with an assistant message; the answers go in "
                f"{columns.chosen!r} and {columns.rejected!r}"
            )
        return dataclasses.replace(proto, messages=msgs, chosen=chosen, rejected=rejected)
    prompt = _text(data, columns.prompt, nonempty=True)
    return dataclasses.replace(proto, prompt=prompt, chosen=chosen, rejected=rejected)


def parse_row(row: Row, fmt: Format, columns: Columns) -> Example:
    """The example of one row; raises ValueError with the reason when it does not fit."""
    d = row.data
    proto = Example(row.file, row.line, fmt)
    try:
        if fmt == "instruction":
            instruction = _text(d, columns.instruction, nonempty=True)
            inp = _text(d, columns.input, required=False)
            if columns.output not in d or d[columns.output] is None:
                raise _Bad(f"missing field {columns.output!r}")
            output = _text(d, columns.output)
            if not output.strip():
                raise _Bad(f"empty response: field {columns.output!r} is empty")
            return dataclasses.replace(proto, instruction=instruction, input=inp, output=output)
        if fmt == "chat":
            return dataclasses.replace(proto, messages=_messages(d, columns.messages))
        if fmt == "completion":
            prompt = _text(d, columns.prompt)
            completion = _text(d, columns.completion)
            if not completion.strip():
                raise _Bad(f"empty response: field {columns.completion!r} is empty")
            return dataclasses.replace(proto, prompt=prompt, completion=completion)
        if fmt == "text":
            return dataclasses.replace(proto, text=_text(d, columns.text, nonempty=True))
        if fmt == "preference":
            return _preference(d, proto, columns)
        return dataclasses.replace(
            proto, text=_text(d, columns.text, nonempty=True), label=_label(d, columns.label)
        )
    except _Bad as exc:
        raise ValueError(str(exc)) from None


def parse(rows: list[Row], fmt: Format, columns: Columns) -> tuple[list[Example], list[RowProblem]]:
    """Examples and problems of ``rows`` read as ``fmt``."""
    examples: list[Example] = []
    problems: list[RowProblem] = []
    for row in rows:
        try:
            examples.append(parse_row(row, fmt, columns))
        except ValueError as exc:
            problems.append(RowProblem(row.file, row.line, str(exc)))
    return examples, problems


def label_names(examples: list[Example]) -> list[str]:
    """Class names in a stable order: numeric when every label is an integer, else sorted."""
    names = {e.label for e in examples}
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)
