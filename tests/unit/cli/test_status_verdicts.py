"""``kubetune status mdep`` prints each check's verdict as a small table, with the evidence."""

from __future__ import annotations

from typing import Any

import numpy as np

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec, AnalysisStatus
from kubetune.cli import status
from kubetune.controllers.modeldeployment import analysis

from ..controllers import synthetic_canary as syn


def mdep(judge: str) -> dict[str, Any]:
    spec = AnalysisSpec.model_validate({"minSamples": 20, "judge": judge})
    verdict, metrics = analysis.judge(spec, syn.window(np.random.default_rng(4), 300, 1200, shift=2.0))
    st = AnalysisStatus(time="2026-12-07T22:00:00Z", verdict=verdict, metrics=metrics, failures=1)
    return {
        "kind": "ModelDeployment",
        "metadata": {"namespace": "ml", "name": "bot"},
        "spec": {"baseModel": {"uri": "hf://org/m"}},
        "status": {"phase": "Progressing", "analysis": st.model_dump(by_alias=True, exclude_none=True)},
    }


def test_statistical_verdicts_show_effect_interval_p_value_and_both_sample_counts() -> None:
    text = status.render_any(mdep("statistical"))
    lines = text.splitlines()
    header = next(line for line in lines if "check" in line and "verdict" in line)
    assert header.split() == [
        "check",
        "verdict",
        "canary",
        "stable",
        "effect",
        "[interval]",
        "p",
        "samples",
        "why",
    ]
    p95 = next(line for line in lines if line.strip().startswith("p95Latency"))
    assert "Fail" in p95 and "300/1200" in p95 and "canary is slower than stable" in p95
    assert p95.count("[") == 1 and "<0.0001" in p95  # the interval, and the p-value in the sentence
    # columns line up: every row's verdict starts where the header's does
    column = header.index("verdict")
    rows = [line for line in lines if line.strip().startswith(("errorRate", "p95Latency", "timePerToken"))]
    assert all(row[column:].split()[0] in ("Pass", "Fail", "Inconclusive") for row in rows), rows


def test_threshold_verdicts_leave_the_statistical_columns_empty() -> None:
    text = status.render_any(mdep("threshold"))
    p95 = next(line for line in text.splitlines() if line.strip().startswith("p95Latency"))
    assert p95.split()[1] == "Fail" and p95.split()[4:7] == ["-", "-", "300"]


def test_a_recorded_experiment_is_printed_with_its_decision_and_table() -> None:
    obj = mdep("statistical")
    analysis_block = obj["status"]["analysis"]
    obj["status"]["experiment"] = {
        "revision": "c0ffee",
        "step": 1,
        "weight": 50,
        "startedAt": "2026-12-07T20:00:00Z",
        "endedAt": "2026-12-07T22:00:00Z",
        "verdict": analysis_block["verdict"],
        "metrics": analysis_block["metrics"],
        "decision": "waiting for kubetune.io/promote (moves on) or kubetune.io/abort (rolls back)",
    }
    lines = status.render_any(obj).splitlines()
    i = next(i for i, line in enumerate(lines) if line.strip().startswith("Experiment:"))
    assert "Fail for canary c0ffee at 50%, 2026-12-07T20:00:00Z .. 2026-12-07T22:00:00Z" in lines[i]
    assert "waiting for kubetune.io/promote" in lines[i]
    assert lines[i + 1].split()[:2] == ["check", "verdict"] and "300/1200" in lines[i + 3]
