"""The chart's PrometheusRule as Helm renders it: ``promtool check rules`` accepts it and
``promtool test rules`` (alert_rules_test.yaml) makes every alert fire once and stay quiet once.

promtool is Debian's (``/usr/bin/promtool``, package ``prometheus``); without it these tests skip
unless KUBETUNE_REQUIRE_PROMETHEUS is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import documents

TESTS = Path(__file__).with_name("alert_rules_test.yaml")
ALERTS = {
    "KubetuneFineTuneJobStalled",
    "KubetuneFineTuneJobFailed",
    "KubetuneFineTuneJobBudgetNearlySpent",
    "KubetuneRolloutRolledBack",
    "KubetuneRolloutInconclusive",
    "KubetuneAnalysisPrometheusUnreachable",
    "KubetuneReconcileErrors",
    "KubetuneNoLeader",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "no promtool on PATH (Debian package prometheus)"
        if os.environ.get("KUBETUNE_REQUIRE_PROMETHEUS"):
            pytest.fail(f"KUBETUNE_REQUIRE_PROMETHEUS is set but {message}", pytrace=False)
        pytest.skip(message)
    return found


def rules_dir(helm: str, directory: Path, *sets: str) -> Path:
    """The PrometheusRule's groups as a Prometheus rule file, with the unit tests beside it."""
    args = ["--set", "prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml"]
    for value in sets:
        args += ["--set", value]
    (rule,) = documents(helm, *args)
    assert rule["kind"] == "PrometheusRule"
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    shutil.copy(TESTS, directory / TESTS.name)
    return directory


def promtool_run(promtool: str, directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=directory, capture_output=True, text=True, timeout=120)


def test_the_rule_is_off_by_default(helm: str) -> None:
    kinds = [doc["kind"] for doc in documents(helm)]
    assert "PrometheusRule" not in kinds


def test_rendered_rules_pass_promtool_check_and_every_alert_has_a_unit_test(
    helm: str, promtool: str, tmp_path: Path
) -> None:
    directory = rules_dir(helm, tmp_path, "prometheusRule.alertLabels.team=ml")
    checked = promtool_run(promtool, directory, "check", "rules", "rules.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    groups = yaml.safe_load((directory / "rules.yaml").read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == ALERTS
    assert all(rule["labels"]["team"] == "ml" for rule in rules)
    tested = {
        case["alertname"]
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert tested == ALERTS


def test_every_alert_fires_when_it_should_and_not_otherwise(helm: str, promtool: str, tmp_path: Path) -> None:
    result = promtool_run(promtool, rules_dir(helm, tmp_path), "test", "rules", TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_notice_a_changed_threshold(helm: str, promtool: str, tmp_path: Path) -> None:
    directory = rules_dir(helm, tmp_path, "prometheusRule.stalledMinutes=60")
    result = promtool_run(promtool, directory, "test", "rules", TESTS.name)
    assert result.returncode != 0
    assert "KubetuneFineTuneJobStalled" in result.stdout + result.stderr
