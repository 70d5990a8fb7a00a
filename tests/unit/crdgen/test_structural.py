"""The generated CRDs are structural and carry what kubectl users rely on."""

import copy
from typing import Any

import pytest

from kubetune.api.v1alpha1 import KINDS
from kubetune.crdgen import generate
from kubetune.crdgen.schema import structural_problems


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_is_structural(kind: str) -> None:
    schema = generate.object_schema(KINDS[kind])
    assert structural_problems(schema) == []
    text = str(schema)
    assert "$ref" not in text and "'title'" not in text and "'type': 'null'" not in text


def test_structural_checker_catches_each_forbidden_shape() -> None:
    bad: dict[str, Any] = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/X"},
            "b": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "c": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": False},
            "d": {"description": "no type"},
        },
    }
    found = "\n".join(structural_problems(bad))
    for needle in (
        ".a: $ref",
        ".b: anyOf with null",
        ".c: additionalProperties beside properties",
        ".d: missing type",
    ):
        assert needle in found


def test_optional_fields_are_nullable_and_quantities_int_or_string() -> None:
    spec = generate.object_schema(KINDS["FineTuneJob"])["properties"]["spec"]
    resources = spec["properties"]["resources"]["properties"]
    assert resources["cpu"]["x-kubernetes-int-or-string"] is True
    assert resources["cpu"]["nullable"] is True
    assert resources["nodeSelector"]["additionalProperties"] == {"type": "string"}
    assert spec["properties"]["baseModel"]["properties"]["revision"]["nullable"] is True


def test_free_form_maps_preserve_unknown_fields() -> None:
    spec = generate.object_schema(KINDS["Adapter"])["properties"]["spec"]
    assert spec["properties"]["hyperparameters"]["x-kubernetes-preserve-unknown-fields"] is True


def test_immutability_and_method_rules_are_cel() -> None:
    spec = generate.object_schema(KINDS["FineTuneJob"])["properties"]["spec"]
    base_rules = spec["properties"]["baseModel"]["x-kubernetes-validations"]
    assert base_rules[0]["rule"] == "self == oldSelf"
    assert "immutable" in base_rules[0]["message"]
    assert spec["properties"]["dataset"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    method_rules = spec["properties"]["method"]["x-kubernetes-validations"]
    assert any("self.type == 'lora'" in r["rule"] for r in method_rules)


def test_enums_ranges_and_defaults_reach_the_schema() -> None:
    spec = generate.object_schema(KINDS["FineTuneJob"])["properties"]["spec"]
    method_type = spec["properties"]["method"]["properties"]["type"]
    assert "prompt-tuning" in method_type["enum"] and method_type["default"] == "lora"
    nodes = spec["properties"]["resources"]["properties"]["numNodes"]
    assert nodes["minimum"] == 1 and nodes["type"] == "integer"
    lr = spec["properties"]["hyperparameters"]["properties"]["learningRate"]
    assert lr["minimum"] == 0 and lr["exclusiveMinimum"] is True
    assert spec["properties"]["hyperparameters"]["default"] == {}


@pytest.mark.parametrize(
    ("kind", "short", "columns"),
    [
        ("FineTuneJob", "ftj", ["Phase", "Ready", "Progress", "Base model", "Method"]),
        ("ModelDeployment", "mdep", ["Phase", "Ready", "Canary weight", "Stable", "Canary"]),
        ("Adapter", "adp", ["Base", "Method", "Score", "State", "Ready"]),
    ],
)
def test_names_columns_and_status_subresource(kind: str, short: str, columns: list[str]) -> None:
    crd = generate.crd(KINDS[kind])
    assert crd["spec"]["names"]["shortNames"] == [short]
    assert crd["spec"]["names"]["categories"] == ["kubetune"]
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[: len(columns)] == columns and names[-1] == "Age"


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    missing: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in node.get("properties", {}).items():
            if "description" not in sub:
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + "[]")

    for kind, model in KINDS.items():
        schema = copy.deepcopy(generate.object_schema(model))
        walk(schema["properties"]["spec"], f"{kind}.spec")
    assert missing == []
