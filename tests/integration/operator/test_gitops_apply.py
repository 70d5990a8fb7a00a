"""GitOps applies: ``kubectl apply --server-side`` as Argo CD and Flux do, against the operator.

Every cluster example in docs/examples, applied twice under one field manager while the
operator reconciles it, leaves nothing to change (``kubectl diff --server-side`` finds no
difference, the generation does not move), and the operator owns no field outside status but
the finalizer kopf adds while its resync timer runs. The FineTuneJob GitOps test re-applies a
trained job and changes an immutable field. The quickstart example is local mode (paths on the
laptop) and is not applied here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(240)
REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "docs" / "examples").glob("*.yaml"))
MANAGER = "gitops-test"


def manifest(path: Path, namespace: str, out: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return docs


def apply(cluster: Cluster, file: Path) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply", "--server-side", f"--field-manager={MANAGER}", "-f", str(file), "-o", "json"
    )


def path_of(doc: dict[str, Any]) -> str:
    plural = {"FineTuneJob": "finetunejobs", "ModelDeployment": "modeldeployments", "Adapter": "adapters"}
    ns = doc["metadata"]["namespace"]
    return f"/apis/kubetune.io/v1alpha1/namespaces/{ns}/{plural[doc['kind']]}/{doc['metadata']['name']}"


def foreign_fields(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """managedFields entries outside status that are not the GitOps tool's, less the finalizer
    kopf adds while its resync timer runs (``kubetune.io/finalizer``, under its own manager
    ``kopf``: a field no manifest sets)."""
    finalizer = {"f:metadata": {"f:finalizers": {".": {}, 'v:"kubetune.io/finalizer"': {}}}}
    return [
        m
        for m in obj["metadata"].get("managedFields") or []
        if m.get("manager") != MANAGER
        and m.get("subresource") != "status"
        and not (m.get("manager") == "kopf" and m.get("fieldsV1") == finalizer)
    ]


def test_every_example_applied_twice_server_side_changes_nothing(
    cluster: Cluster, kube: Kube, namespace: str, operator: kubetune_operator.Operator, tmp_path: Path
) -> None:
    assert EXAMPLES, "docs/examples has no examples"
    applied: list[tuple[Path, list[dict[str, Any]]]] = []
    for example in EXAMPLES:
        file = tmp_path / example.name
        docs = manifest(example, namespace, file)
        first = apply(cluster, file)
        assert first.returncode == 0, f"{example.name}: {first.stderr}"
        applied.append((file, docs))

    def observed(doc: dict[str, Any]) -> dict[str, Any] | None:
        obj = kube.get(path_of(doc))
        seen = (obj.get("status") or {}).get("observedGeneration")
        return obj if seen == obj["metadata"]["generation"] else None

    before = {}
    for file, docs in applied:
        for doc in docs:
            before[path_of(doc)] = wait_for(lambda d=doc: observed(d), 60, f"the operator saw {file.name}")
    for file, _ in applied:
        diff = cluster.kubectl("diff", "--server-side", f"--field-manager={MANAGER}", "-f", str(file))
        assert diff.returncode == 0, f"{file.name} differs after one apply:\n{diff.stdout}{diff.stderr}"
        second = apply(cluster, file)
        assert second.returncode == 0, f"{file.name}: {second.stderr}"
    for path, old in before.items():
        now = kube.get(path)
        assert now["metadata"]["generation"] == old["metadata"]["generation"], path
        assert now["spec"] == old["spec"], path
        assert foreign_fields(now) == [], f"{path}: {json.dumps(foreign_fields(now), indent=1)}"
