"""charts/kubetune/values.schema.json and values.yaml describe the same keys with the same types.

The schema rejects unknown keys at every level the chart defines (cert-manager's habit), so a
key added to values.yaml without the schema makes every install fail; this test says so first,
and also catches a schema key that values.yaml lost. Maps the chart passes through to
Kubernetes unchanged (resources, securityContext, affinity, labels, annotations) are left to
the API server: the schema gives them a type and no properties.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "kubetune"
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _walk(values: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    problems = []
    properties = schema.get("properties")
    if properties is None:
        return problems  # a pass-through map: its keys are Kubernetes', not the chart's
    if schema.get("additionalProperties") is not False:
        problems.append(f"{path or '.'}: additionalProperties must be false")
    extra = set(properties) - set(values) - ({"global"} if path == "" else set())
    problems += [f"{path}.{key}: in the schema but not in values.yaml" for key in sorted(extra)]
    for key, value in values.items():
        where = f"{path}.{key}"
        if key not in properties:
            problems.append(f"{where}: in values.yaml but not in the schema")
            continue
        node = properties[key]
        wanted = JSON_TYPES[type(value)]
        allowed = node.get("type")
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if wanted not in allowed and not (wanted == "integer" and "number" in allowed):
            problems.append(f"{where}: default is {wanted}, schema says {allowed}")
        if "enum" in node and value not in node["enum"]:
            problems.append(f"{where}: default {value!r} is not in the schema's enum {node['enum']}")
        if isinstance(value, dict):
            problems += _walk(value, node, where)
    return problems


def test_schema_is_draft_07_and_closed_at_the_top() -> None:
    schema = _schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False


def test_every_values_key_is_in_the_schema_with_its_type_and_vice_versa() -> None:
    problems = _walk(_values(), _schema(), "")
    assert not problems, "values.yaml and values.schema.json differ:\n" + "\n".join(problems)


def test_the_drift_check_notices_a_key_missing_from_either_side() -> None:
    schema = _schema()
    values = _values()
    values["metrics"]["newKey"] = 1
    del values["dashboards"]["label"]
    problems = _walk(values, schema, "")
    assert ".metrics.newKey: in values.yaml but not in the schema" in problems
    assert ".dashboards.label: in the schema but not in values.yaml" in problems
    values = _values()
    values["workers"] = "16"
    assert _walk(values, schema, "") == [".workers: default is string, schema says ['integer']"]


@pytest.mark.parametrize("name", ["resources", "podSecurityContext", "affinity", "nodeSelector"])
def test_kubernetes_typed_maps_stay_open(name: str) -> None:
    assert "properties" not in _schema()["properties"][name]
