"""Both judges on seeded synthetic windows: how often each fails, holds or passes.

    .venv/bin/python benchmarks/canary/judge_draws.py

The windows of ``tests/unit/controllers/synthetic_canary.py`` (log-normal latencies bucketed as
TGI buckets them, binomial failures), with the unit tests' seed, so the numbers are the ones the
unit tests assert on and docs/modeldeployment.md records. Pure computation: no server, no
Prometheus; about a minute on one core.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec
from kubetune.controllers.modeldeployment import analysis

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "unit" / "controllers"))
import synthetic_canary as syn

TIGHT = {"maxP95LatencyRatio": 1.2, "maxTimePerTokenRatio": 1.2, "maxQueueTimeRatio": 1.2}
CASES: list[tuple[str, int, int, int, dict[str, Any], dict[str, Any]]] = [
    ("identical, default limits", 1000, 200, 800, {}, {}),
    ("identical, default limits", 300, 40, 160, {}, {}),
    ("identical, ratio limits 1.2", 300, 200, 800, TIGHT, {}),
    ("latency x1.3, ratio limits 1.2", 200, 200, 800, TIGHT, {"shift": 1.3}),
    (
        "failures 5% -> 10%, default limits",
        200,
        1000,
        4000,
        {},
        {"canary_errors": 0.10, "stable_errors": 0.05},
    ),
    ("failures 0% -> 10%, default limits", 300, 40, 160, {}, {"canary_errors": 0.10, "stable_errors": 0.0}),
]


def verdicts(judge: str, builtin: dict[str, Any], draws: int, nc: int, ns: int, **kw: Any) -> dict[str, int]:
    spec = AnalysisSpec.model_validate({"minSamples": 20, "judge": judge, "builtin": builtin})
    rng = np.random.default_rng(2026)  # the unit tests' seed
    out = {"Fail": 0, "Inconclusive": 0, "Pass": 0}
    for _ in range(draws):
        out[analysis.judge(spec, syn.window(rng, nc, ns, **kw))[0]] += 1
    return out


def main() -> int:
    print("| windows | canary / stable requests | statistical: Fail / held / Pass | threshold: Fail / Pass |")
    print("|---|---|---|---|")
    for what, draws, nc, ns, builtin, kw in CASES:
        s = verdicts("statistical", builtin, draws, nc, ns, **kw)
        t = verdicts("threshold", builtin, draws, nc, ns, **kw)
        print(
            f"| {draws} {what} | {nc} / {ns} | {s['Fail']} / {s['Inconclusive']} / {s['Pass']} "
            f"| {t['Fail']} / {t['Pass']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
