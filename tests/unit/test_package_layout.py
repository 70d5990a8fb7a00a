"""The package lives under operator/ without shadowing the standard library's ``operator``."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_operator_still_gives_the_standard_library() -> None:
    # Run from the repo root, where a directory named operator/ exists.
    code = "import operator, kubetune; print(operator.__file__); print(operator.add(2, 3))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    path, result = out.stdout.split()
    assert result == "5"
    assert not Path(path).is_relative_to(REPO), f"operator resolved inside the repo: {path}"


def test_operator_directory_has_no_init() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()
