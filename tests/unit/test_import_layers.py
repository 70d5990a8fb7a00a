"""The import-linter contracts in pyproject.toml hold, and they are not decoration: the layers
contract fails on an import that reaches up from the API layer (run on a copy of the package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "operator")}
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_upward_import_from_the_api_layer_breaks_the_layers_contract(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        REPO / "operator" / "kubetune",
        tmp_path / "operator" / "kubetune",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    exits = tmp_path / "operator" / "kubetune" / "api" / "contract" / "exits.py"
    exits.write_text(exits.read_text() + "\nfrom kubetune.controllers import settings  # noqa\n")
    out = _lint(tmp_path)
    text = " ".join((out.stdout + out.stderr).split())  # import-linter wraps long names
    assert out.returncode == 1, text
    assert "api imports no kopf, kubernetes or ML frameworks KEPT" in text  # the copy was read
    assert "on top BROKEN" in text  # the layers contract's name ends "... the test harness on top"
    assert "kubetune.api.contract.exits -> kubetune.controllers.settings" in text
