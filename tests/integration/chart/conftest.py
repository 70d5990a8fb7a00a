"""Chart tests that need only ``helm`` (and ``promtool``), no cluster: the values schema as Helm
enforces it, and the alert rules as rendered. ``helm`` is found as in
``controlplane/test_helm_chart.py``; without it these tests skip, unless KUBETUNE_REQUIRE_HELM
is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "kubetune"
HELM_CACHE = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune")) / "helm"


def find_helm() -> str | None:
    """``$KUBETUNE_HELM``, else the newest build ``hack/build-helm.sh`` cached, else PATH."""
    explicit = os.environ.get("KUBETUNE_HELM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    built = sorted(HELM_CACHE.glob("*/bin/helm"), key=lambda p: p.stat().st_mtime)
    return str(built[-1]) if built else shutil.which("helm")


@pytest.fixture(scope="session")
def helm() -> str:
    found = find_helm()
    if found is None:
        message = "no helm binary: run hack/build-helm.sh (or set KUBETUNE_HELM to one)"
        if os.environ.get("KUBETUNE_REQUIRE_HELM"):
            pytest.fail(f"KUBETUNE_REQUIRE_HELM is set but {message}", pytrace=False)
        pytest.skip(f"{message}; set KUBETUNE_REQUIRE_HELM=1 to make this an error")
    return found


def template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``helm template t charts/kubetune ARGS`` with a private Helm home."""
    env = {
        **os.environ,
        "HELM_CACHE_HOME": "/tmp/kubetune-helm-cache",
        "HELM_CONFIG_HOME": "/tmp/kubetune-helm",
    }
    return subprocess.run(
        [helm, "template", "t", str(CHART), "--namespace", "kubetune-system", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def documents(helm: str, *args: str) -> list[dict[str, Any]]:
    result = template(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
