"""The dashboards as the chart renders them: ConfigMaps the Grafana sidecar picks up, carrying
the JSON of charts/kubetune/dashboards unchanged, and PromQL that promtool parses."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kubetune.testing import dashboards

from .conftest import documents


def test_dashboards_are_off_by_default(helm: str) -> None:
    assert not [d for d in documents(helm) if d["kind"] == "ConfigMap"]


def test_each_dashboard_is_a_configmap_with_the_sidecar_label(helm: str) -> None:
    maps = [
        d
        for d in documents(
            helm,
            "--set",
            "dashboards.enabled=true",
            "--set",
            "dashboards.namespace=monitoring",
            "--set",
            "dashboards.annotations.grafana_folder=kubetune",
        )
        if d["kind"] == "ConfigMap"
    ]
    assert len(maps) == len(dashboards.load())
    rendered = {}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "monitoring"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "kubetune"}
        ((key, text),) = cm["data"].items()
        rendered[key] = json.loads(text)
    assert rendered == {f"kubetune-{stem}.json": d for stem, d in dashboards.load().items()}


def test_every_panel_query_parses(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool on PATH (Debian package prometheus)")
    variables = {"namespace": "team-a|team-b", "__rate_interval": "1m", "__range": "6h"}
    rules = [
        {"record": f"kubetune:panel_{i}", "expr": q.substituted(variables)}
        for i, q in enumerate(dashboards.queries())
    ]
    (tmp_path / "panels.yaml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", "panels.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_service_monitor_keeps_the_namespace_label_the_panels_group_by(helm: str) -> None:
    # Without honorLabels, Prometheus renames the operator's namespace="<object's namespace>" to
    # exported_namespace and every per-namespace panel and alert groups by the operator's own.
    (monitor,) = [
        d for d in documents(helm, "--set", "serviceMonitor.enabled=true") if d["kind"] == "ServiceMonitor"
    ]
    assert [e.get("honorLabels") for e in monitor["spec"]["endpoints"]] == [True]
