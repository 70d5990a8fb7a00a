"""The chart's Prometheus values reach the operator as the settings that confine tenants.

Rendered with the real ``helm`` (``hack/build-helm.sh``); skipped without it unless
KUBETUNE_REQUIRE_HELM is set. The default allows no Prometheus beyond ``prometheus.url``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubetune.controllers.settings import Settings

CHART = Path(__file__).resolve().parents[3] / "charts" / "kubetune"


def operator_env(helm: str, *sets: str) -> dict[str, str]:
    args = [helm, "template", "kt", str(CHART), "--namespace", "ops"]
    for value in sets:
        args += ["--set", value]
    env = {
        **os.environ,
        "HELM_CACHE_HOME": "/tmp/kubetune-helm-cache",
        "HELM_CONFIG_HOME": "/tmp/kubetune-helm",
    }
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(done.stdout) if d]
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"] if "value" in e}


def test_by_default_no_prometheus_beyond_the_configured_one_is_allowed(helm: str) -> None:
    settings = Settings.from_env(operator_env(helm, "prometheus.url=http://prometheus.monitoring:9090"))
    assert settings.prometheus_url == "http://prometheus.monitoring:9090"
    assert settings.prometheus_allowed_urls == () and settings.prometheus_tenant_url is None
    assert settings.prometheus_timeout_s == 5.0


def test_allowed_urls_tenant_proxy_and_deadline_reach_the_settings(helm: str) -> None:
    env = operator_env(
        helm,
        "prometheus.url=http://prometheus.monitoring:9090",
        "prometheus.allowedUrls={http://prometheus.team-a:9090,http://thanos.monitoring:10902}",
        "prometheus.tenantProxyUrl=http://prom-label-proxy.monitoring:8080",
        "prometheus.timeoutSeconds=3",
    )
    settings = Settings.from_env(env)
    assert settings.prometheus_allowed_urls == (
        "http://prometheus.team-a:9090",
        "http://thanos.monitoring:10902",
    )
    assert settings.prometheus_tenant_url == "http://prom-label-proxy.monitoring:8080"
    assert settings.prometheus_timeout_s == 3.0
