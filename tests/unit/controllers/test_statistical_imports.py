"""The operator does not pay for SciPy until a statistical check runs."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_operator_leaves_scipy_stats_unloaded() -> None:
    # scipy.stats adds ~75 MiB to the operator's RSS (benchmarks/operator); the threshold judge,
    # the default, never needs it
    code = "import sys, kubetune.controllers.operator; print('scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
