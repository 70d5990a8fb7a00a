"""docs/gitops.md shows the chart's Argo CD health scripts exactly as the chart ships them."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "charts" / "kubetune" / "argocd"
KINDS = {"finetunejob.lua": "FineTuneJob", "modeldeployment.lua": "ModelDeployment", "adapter.lua": "Adapter"}


def argocd_cm() -> dict[str, str]:
    text = (REPO / "docs" / "gitops.md").read_text()
    for block in text.split("```yaml\n")[1:]:
        for doc in yaml.safe_load_all(block.split("```")[0]):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "ConfigMap"
                and doc["metadata"]["name"] == "argocd-cm"
            ):
                return dict(doc["data"])
    raise AssertionError("docs/gitops.md has no argocd-cm ConfigMap")


def test_every_kind_has_a_script_in_the_chart() -> None:
    assert sorted(p.name for p in SCRIPTS.glob("*.lua")) == sorted(KINDS)


def test_the_docs_carry_each_script_under_the_key_argo_cd_reads() -> None:
    data = argocd_cm()
    for file, kind in KINDS.items():
        key = f"resource.customizations.health.kubetune.io_{kind}"
        assert data.get(key) == (SCRIPTS / file).read_text(), f"{key} in docs/gitops.md differs from {file}"
    assert len(data) == len(KINDS)
