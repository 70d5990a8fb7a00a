"""Pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema.

Kubernetes wants every node typed, no ``$ref``, no ``anyOf`` with ``null`` (``nullable``
instead), no ``additionalProperties`` beside ``properties``, and int-or-string and free-form
fields marked with their ``x-kubernetes-*`` extensions. This module rewrites the pydantic
output into that shape and checks the result (:func:`structural_problems`). Pure functions.
"""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]

_DROP = {"title", "$defs", "definitions"}


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline a ``$ref`` (siblings such as description override the target's)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[-1]
    if name not in defs:
        raise KeyError(f"unresolved $ref {ref}")
    merged = copy.deepcopy(defs[name])
    for key, value in node.items():
        if key != "$ref":
            merged[key] = value
    return _resolve(merged, defs)


def _merge_allof(node: Schema, defs: dict[str, Schema]) -> Schema:
    parts = node.pop("allOf")
    merged: Schema = {}
    for part in parts:
        merged.update(_resolve(part, defs))
    merged.update(node)
    return merged


def to_structural(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Return a structural copy of ``node``, with every reference inlined."""
    node = _resolve(dict(node), defs)
    if "allOf" in node:
        node = _merge_allof(node, defs)

    if node.get("x-kubernetes-int-or-string"):
        out: Schema = {
            k: v for k, v in node.items() if k not in _DROP and k not in ("anyOf", "type", "default")
        }
        if "default" in node and node["default"] is not None:
            out["default"] = node["default"]
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out

    nullable = False
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']} structurally; use a single type")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        inner = _resolve(options[0], defs)
        node = {**inner, **{k: v for k, v in rest.items() if k != "default" or v is not None}}
        if "allOf" in node:
            node = _merge_allof(node, defs)
        if node.get("x-kubernetes-int-or-string"):
            out = to_structural(node, defs)
            if nullable:
                out["nullable"] = True
            return out

    out = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
            continue
        if key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
            continue
        if key == "properties":
            out["properties"] = {name: to_structural(sub, defs) for name, sub in value.items()}
            continue
        if key == "items":
            out["items"] = to_structural(value, defs)
            continue
        if key == "additionalProperties":
            if "properties" in node:
                continue  # extra="forbid" -> structural schemas prune instead
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = to_structural(value, defs)
            continue
        out[key] = copy.deepcopy(value)

    if "type" not in out and "enum" in out:
        out["type"] = _enum_type(out["enum"])
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        # Any: a free-form value
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if nullable:
        out["nullable"] = True
    if out.get("default", 0) is None:
        del out["default"]
    return out


def _enum_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values}
    if kinds <= {str}:
        return "string"
    if kinds <= {int}:
        return "integer"
    if kinds <= {int, float}:
        return "number"
    if kinds <= {bool}:
        return "boolean"
    raise ValueError(f"mixed enum {values}")


def structural_problems(node: Schema, path: str = "") -> list[str]:
    """Every way ``node`` breaks the structural-schema rules, as ``path: problem`` strings."""
    problems: list[str] = []
    here = path or "<root>"
    if "$ref" in node:
        problems.append(f"{here}: $ref is not allowed")
    if "anyOf" in node:
        if not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{here}: anyOf without x-kubernetes-int-or-string")
        if any(o.get("type") == "null" for o in node["anyOf"]):
            problems.append(f"{here}: anyOf with null; use nullable")
    if "allOf" in node or "oneOf" in node or "not" in node:
        problems.append(f"{here}: allOf/oneOf/not are not structural")
    if "additionalProperties" in node and "properties" in node:
        problems.append(f"{here}: additionalProperties beside properties")
    if (
        "type" not in node
        and not node.get("x-kubernetes-int-or-string")
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        problems.append(f"{here}: missing type")
    if "title" in node:
        problems.append(f"{here}: title should have been dropped")
    for name, sub in node.get("properties", {}).items():
        problems.extend(structural_problems(sub, f"{path}.{name}"))
    if isinstance(node.get("items"), dict):
        problems.extend(structural_problems(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        problems.extend(structural_problems(node["additionalProperties"], f"{path}{{}}"))
    return problems
