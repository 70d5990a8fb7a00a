"""Helm itself refuses values that values.schema.json does not allow, with its own message."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import template


def test_the_default_values_and_every_optional_part_render(helm: str) -> None:
    result = template(
        helm,
        "--set",
        "dashboards.enabled=true",
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "watchNamespaces={a,b}",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicaCount=two", "at '/replicaCount': got string, want integer"),
        ("leaderElection.enabled=maybe", "at '/leaderElection/enabled': got string, want boolean"),
        ("metrics.port=0", "at '/metrics/port': minimum: got 0, want 1"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("registry.default=registry.example.com/ml", "at '/registry/default'"),
        ("prometheusRule.budgetUsedRatio=2", "at '/prometheusRule/budgetUsedRatio'"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("metrics.service.prot=9090", "at '/metrics/service': additional properties 'prot' not allowed"),
        ("dashboards.lable=x", "at '/dashboards': additional properties 'lable' not allowed"),
    ],
)
def test_a_wrong_type_or_unknown_key_is_refused_by_helm(helm: str, value: str, message: str) -> None:
    result = template(helm, "--set", value)
    assert result.returncode != 0, f"helm accepted {value}"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_a_values_file_with_a_typo_is_refused(helm: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("serviceMonitor:\n  enabled: true\n  intervall: 15s\n")
    result = template(helm, "-f", str(values))
    assert result.returncode != 0
    assert "at '/serviceMonitor': additional properties 'intervall' not allowed" in result.stderr
