"""Turn pydantic validation errors into problems a user can act on.

Each :class:`Problem` names the field path as written in YAML (``spec.method.lora.r``,
``spec.rollout.steps[2].setWeight``) and a reason in plain words, with a suggestion for a
misspelled field. Used by ``kubetune validate``, by local mode and by the operator, so the same
manifest gets the same message everywhere. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kubetune.api.v1alpha1 import API_VERSION, GROUP, KINDS, names

Loc = tuple[str | int, ...]

_UNION_TAGS = {"int", "str", "float", "bool", "list", "dict", "none", "function-after", "function-before"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest."""

    loc: Loc
    message: str

    @property
    def path(self) -> str:
        return format_loc(self.loc)

    def __str__(self) -> str:
        if not self.loc or self.message.startswith(self.path + " ") or self.message.startswith("spec."):
            return self.message
        return f"{self.path}: {self.message}"


def format_loc(loc: Loc) -> str:
    """``("spec", "steps", 2, "setWeight")`` -> ``spec.steps[2].setWeight``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _clean_loc(loc: tuple[str | int, ...]) -> Loc:
    return tuple(p for p in loc if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p)))


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (walking aliases, lists and optionals)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next(
            (f for name, f in current.model_fields.items() if (f.alias or name) == part or name == part),
            None,
        )
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """The model inside ``X | None``, ``list[X]`` or ``Annotated[X, ...]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def field_names(model: type[BaseModel]) -> list[str]:
    """Wire names of a model's fields."""
    return [f.alias or name for name, f in model.model_fields.items()]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: ErrorDetails, root: type[BaseModel], loc: Loc) -> str:
    kind = err["type"]
    ctx = err.get("ctx", {})
    got = err.get("input")
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        parent = _model_at(root, loc[:-1])
        known = field_names(parent) if parent else []
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        lowered = [k for k in known if k.lower() == name.lower()]
        if lowered or close:
            return f"unknown field {name!r} (likely a typo of {(lowered or close)[0]!r})"
        return (
            f"unknown field {name!r}; fields here are {', '.join(known)}"
            if known
            else f"unknown field {name!r}"
        )
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')} (got {_show(got)})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number (got {_show(got)})"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number (got {_show(got)})"
    if kind == "bool_type":
        return f"must be true or false (got {_show(got)})"
    if kind == "string_type":
        return f"must be a string (got {_show(got)})"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of fields (got {_show(got)})"
    if kind == "list_type":
        return f"must be a list (got {_show(got)})"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        return f"must be {op} {ctx.get(key)} (got {_show(got)})"
    if kind == "string_pattern_mismatch":
        field = str(loc[-1]) if loc else ""
        hint = _PATTERN_HINTS.get(field, f"it must match {ctx.get('pattern')}")
        return f"{_show(got)} is not valid: {hint}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_short":
        return f"must not be empty (at least {ctx.get('min_length')} characters)"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind in ("value_error", "assertion_error"):
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        return msg
    return str(err["msg"])


_PATTERN_HINTS = {
    "uri": "write hf://org/name[@revision], oci://host/repo@sha256:..., pvc://claim/path, s3://bucket/key or a local path",
    "validationUri": "write pvc://claim/path, s3://bucket/key, https://... or a local path",
    "repository": "write oci://host[:port]/repo (lowercase) or a local directory path",
    "tag": "tags are 1-128 characters of letters, digits, '_', '.', '-', not starting with '.' or '-'",
    "ref": "write a digest-pinned reference, oci://host/repo@sha256:<64 hex digits>",
    "interval": "write a duration such as 30s, 5m or 1h",
    "window": "write a duration such as 30s, 5m or 1h",
    "duration": "write a duration such as 30s, 5m or 1h",
    "name": "use lowercase letters, digits, '.', '_' and '-'",
}


def problems_from(error: ValidationError, root: type[BaseModel], prefix: Loc = ()) -> list[Problem]:
    """Translate every error of ``error`` (raised validating ``root``)."""
    out: list[Problem] = []
    for err in error.errors():
        loc = _clean_loc(err["loc"])
        out.append(Problem(prefix + loc, _message(err, root, loc)))
    return out


def _name_problems(kind: str, meta: dict[str, Any]) -> list[Problem]:
    """What the API server's CEL rules on metadata.name would refuse (:mod:`names`)."""
    rule = names.RULES.get(kind)
    if rule is None:
        return []
    name, prefix = meta.get("name"), meta.get("generateName")
    if isinstance(name, str) and name:
        why = names.problem(rule, name)
        return [Problem(("metadata", "name"), why)] if why else []
    if isinstance(prefix, str):
        why = names.generate_name_problem(rule, prefix)
        return [Problem(("metadata", "generateName"), why)] if why else []
    return [Problem(("metadata", "name"), "must be a string")]


def validate_manifest(obj: Any) -> tuple[str | None, list[Problem]]:
    """Validate one parsed manifest; return its kind (None if not a kubetune object) and problems.

    Objects of other API groups return ``(None, [])``: a file may mix a Secret with a job.
    """
    if not isinstance(obj, dict):
        return None, [Problem((), f"document must be a mapping, got {type(obj).__name__}")]
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not api_version.startswith(GROUP + "/"):
        if api_version is None and kind in KINDS:
            return str(kind), [Problem(("apiVersion",), f"is required; write apiVersion: {API_VERSION}")]
        return None, []
    if api_version != API_VERSION:
        return str(kind), [Problem(("apiVersion",), f"{api_version!r} is not served; write {API_VERSION}")]
    if kind not in KINDS:
        return str(kind), [Problem(("kind",), f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")]
    model = KINDS[str(kind)]
    found: list[Problem] = []
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        found.append(Problem(("metadata", "name"), "is required; every object needs a name"))
    else:
        found.extend(_name_problems(str(kind), meta))
    try:
        model.model_validate(obj)
    except ValidationError as exc:
        found.extend(problems_from(exc, model))
    return str(kind), found
