"""Names the children cannot carry are refused up front: by ``kubetune validate`` and the CRD.

The limits in :mod:`kubetune.api.v1alpha1.names` are checked against the children the builders
really make: at the longest accepted name, every child name, label value and pod hostname is
one Kubernetes accepts; one character more is refused, with a message naming metadata.name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.api import errors
from kubetune.api.v1alpha1 import FineTuneJob, ModelDeployment, names
from kubetune.cli.main import main
from kubetune.controllers.finetunejob import builders as ftj_builders
from kubetune.controllers.modeldeployment import builders as mdep_builders
from kubetune.controllers.settings import Settings
from kubetune.crdgen import generate

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
REF = "oci://registry.test/ml/a@sha256:" + "a" * 64


def ftj(name: str, nodes: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name, "namespace": "ml", "uid": "u-1"},
        "spec": {
            "baseModel": {"uri": "hf://org/model"},
            "dataset": {"uri": "pvc://data/train.jsonl"},
            "resources": {"numNodes": nodes, "gpusPerNode": 1},
            "method": {"type": "full"},
        },
    }


def mdep(name: str, adapter: str = "support-bot") -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml", "uid": "u-2"},
        "spec": {"baseModel": {"uri": "hf://org/model"}, "adapters": [{"name": adapter, "ref": REF}]},
    }


def _labels(manifest: dict[str, Any]) -> list[str]:
    """Every label value of a manifest and of its pod template."""
    out = list((manifest["metadata"].get("labels") or {}).values())
    template = (manifest.get("spec") or {}).get("template") or {}
    out += list(((template.get("metadata") or {}).get("labels") or {}).values())
    return out


def test_the_longest_finetunejob_name_fits_every_child_and_label() -> None:
    name = "a" * names.FINETUNEJOB.max_length
    job = FineTuneJob.model_validate(ftj(name, nodes=names.MAX_TRAINING_NODES))
    settings = Settings(trainer_image="trainer:test")
    manifests = [
        *ftj_builders.children(job, settings),
        ftj_builders.training_job(job, settings),
        ftj_builders.workers_service(job, settings),
    ]
    for m in manifests:
        child = m["metadata"]["name"]
        assert DNS_1123_SUBDOMAIN.match(child) and len(child) <= 253, child
        if m["kind"] == "Service":
            assert DNS_1035.match(child) and len(child) <= 63, child
        if m["kind"] == "Job":
            # the Job controller copies the Job's name into its pods' job-name label
            assert len(child) <= 63, child
        for value in _labels(m):
            assert LABEL_VALUE.match(value) and len(value) <= 63, value
    train = ftj_builders.training_job(job, settings)["metadata"]["name"]
    last_hostname = f"{train}-{names.MAX_TRAINING_NODES - 1}"  # an Indexed Job pod's hostname
    assert DNS_1123_LABEL.match(last_hostname) and len(last_hostname) == 63


def test_the_longest_modeldeployment_and_adapter_names_fit_its_services_and_containers() -> None:
    adapter = "b" * names.SERVED_ADAPTER_MAX
    md = ModelDeployment.model_validate(mdep("a" * names.MODELDEPLOYMENT.max_length, adapter))
    services = [
        mdep_builders.service(md),
        *(mdep_builders.service(md, t, "0123456789") for t in ("stable", "canary")),
    ]
    assert max(len(s["metadata"]["name"]) for s in services) == 63
    for s in services:
        assert DNS_1035.match(s["metadata"]["name"])
    dep = mdep_builders.deployment(md, "0123456789", "stable", 1, {adapter: REF}, kubetune_image="k:test")
    pod = dep["spec"]["template"]["spec"]
    for container in pod["initContainers"] + pod["containers"]:
        assert DNS_1123_LABEL.match(container["name"]) and len(container["name"]) <= 63, container["name"]
    for value in _labels(dep):
        assert LABEL_VALUE.match(value) and len(value) <= 63


@pytest.mark.parametrize(
    ("manifest", "needle"),
    [
        (ftj("a" * (names.FINETUNEJOB.max_length + 1)), f"at most {names.FINETUNEJOB.max_length} characters"),
        (ftj("support.bot"), "no '.'"),
        (ftj("7b-lora"), "start with a lowercase letter"),
        (mdep("a" * (names.MODELDEPLOYMENT.max_length + 1)), "at most 56 characters"),
        (mdep("chat.v2"), "no '.'"),
    ],
)
def test_validate_refuses_a_name_the_children_cannot_carry(manifest: dict[str, Any], needle: str) -> None:
    kind, problems = errors.validate_manifest(manifest)
    assert kind == manifest["kind"]
    assert len(problems) == 1
    assert problems[0].loc == ("metadata", "name")
    assert str(problems[0]).startswith("metadata.name must ") and needle in str(problems[0])


def test_validate_prints_the_line_of_metadata_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(ftj("support.bot"), sort_keys=False))
    assert main(["validate", "-q", str(path)]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith(
        f"{path}:4: FineTuneJob/support.bot: metadata.name must start with a lowercase letter"
    )


def test_validate_checks_generate_name_with_room_for_the_random_suffix() -> None:
    manifest = ftj("x")
    manifest["metadata"] = {"generateName": "a" * (names.FINETUNEJOB.max_length - 5)}
    assert errors.validate_manifest(manifest)[1] == []
    manifest["metadata"] = {"generateName": "a" * (names.FINETUNEJOB.max_length - 4)}
    (problem,) = errors.validate_manifest(manifest)[1]
    assert problem.loc == ("metadata", "generateName") and "at most 41 characters" in str(problem)


@pytest.mark.parametrize("bad", ["chat.v2", "chat_v2", "b" * (names.SERVED_ADAPTER_MAX + 1), "-x"])
def test_a_served_adapter_name_that_cannot_name_a_container_is_refused(bad: str) -> None:
    _, problems = errors.validate_manifest(mdep("chat", adapter=bad))
    assert [p.path for p in problems] == ["spec.adapters[0].name"]
    assert "pull-adapter-<name>" in problems[0].message or "at most" in problems[0].message


def test_the_crds_carry_the_same_limits_as_cel_rules_on_metadata_name() -> None:
    for kind, rule in names.RULES.items():
        model = {"FineTuneJob": FineTuneJob, "ModelDeployment": ModelDeployment}[kind]
        schema = generate.object_schema(model)
        rules = schema["x-kubernetes-validations"]
        assert {r["rule"] for r in rules} == {
            f"self.metadata.name.size() <= {rule.max_length}",
            f"self.metadata.name.matches('{rule.pattern}')",
        }
        assert all(r["message"].startswith("metadata.name must") for r in rules)
