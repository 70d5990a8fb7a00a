"""Chart tests that need only ``helm`` (and ``promtool``), no cluster: the values schema as Helm
enforces it, and the alert rules as rendered. ``helm`` is found as in
``controlplane/test_helm_chart.py``; without it these tests skip, unless KUBETUNE_REQUIRE_HELM
is set.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "kubetune"


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
