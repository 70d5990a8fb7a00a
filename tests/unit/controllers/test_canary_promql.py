"""The built-in checks' PromQL, evaluated by Prometheus itself (``promtool test rules``).

TGI creates a series only when it first counts something, so the queries must cope with series
that do not exist, series born inside the window and counters that reset. Each case below feeds
Prometheus the samples a scrape of real TGI pods would store and evaluates the exact strings
:func:`analysis.builtin_queries` returns, for the canary and the stable revision, at one instant.

Samples are every 15 s from 0; the window is the 5 minutes before the evaluation at 20m, i.e.
samples 60 (15m) to 80 (20m). Needs ``promtool`` (Debian package ``prometheus``): skipped
without it, an error under ``KUBETUNE_REQUIRE_PROMETHEUS=1``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubetune.controllers.modeldeployment import engines

NS = "ml"
WINDOW = "5m"
EVAL_AT = "20m"
CANARY, STABLE = "canary", "stable"
SAMPLES = "samples"  # the sample-count query (the same for every check)


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        why = "promtool not found (apt-get install prometheus)"
        if os.environ.get("KUBETUNE_REQUIRE_PROMETHEUS"):
            pytest.fail(f"KUBETUNE_REQUIRE_PROMETHEUS is set but {why}", pytrace=False)
        pytest.skip(f"{why}; set KUBETUNE_REQUIRE_PROMETHEUS=1 to fail")
    return found


@dataclasses.dataclass(frozen=True)
class Expect:
    """What one query must return: nothing (``empty``), a value within ``tol``, or one in [lo, hi]."""

    lo: float = math.nan
    hi: float = math.nan
    empty: bool = False

    def test(self, promql: str) -> dict[str, Any]:
        # promtool compares floats exactly and never matches NaN, so the comparison is PromQL's
        if self.empty:
            return {"expr": promql, "eval_time": EVAL_AT, "exp_samples": []}
        if math.isnan(self.lo):
            expr = f"({promql}) != bool ({promql})"  # 1 only for NaN
        else:
            expr = f"(({promql}) >= bool {self.lo!r}) * (({promql}) <= bool {self.hi!r})"
        return {"expr": expr, "eval_time": EVAL_AT, "exp_samples": [{"labels": "{}", "value": 1}]}


def value(v: float, tol: float = 1e-9) -> Expect:
    return Expect(v - tol, v + tol)


def between(lo: float, hi: float) -> Expect:
    return Expect(lo, hi)


NOTHING = Expect(empty=True)
NAN = Expect()


def series(metric: str, rev: str, values: str, pod: str | None = None, **labels: str) -> dict[str, str]:
    all_labels = {"namespace": NS, "kubetune_io_revision": rev, "pod": pod or f"{rev}-0", **labels}
    text = ",".join(f'{k}="{v}"' for k, v in all_labels.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


def failures(rev: str, err: str, values: str, pod: str | None = None) -> dict[str, str]:
    return series("tgi_request_failure", rev, values, pod, err=err)


# A stable revision that has served all along and never failed: 10 requests per scrape, 200 in the
# window, no failure series at all (TGI has not created one), latency histograms growing steadily.
STABLE_SERIES = [
    series("tgi_request_count", STABLE, "0+10x80"),
    series("tgi_request_duration_bucket", STABLE, "0+2x80", le="0.5"),
    series("tgi_request_duration_bucket", STABLE, "0+4x80", le="1"),
    series("tgi_request_duration_bucket", STABLE, "0+4x80", le="+Inf"),
    series("tgi_request_mean_time_per_token_duration_sum", STABLE, "0+0.25x80"),
    series("tgi_request_mean_time_per_token_duration_count", STABLE, "0+5x80"),
    series("tgi_request_queue_duration_sum", STABLE, "0+0.5x80"),
    series("tgi_request_queue_duration_count", STABLE, "0+10x80"),
]
STABLE_EXPECT = {
    ("errorRate", STABLE): value(0),
    (SAMPLES, STABLE): value(200),
    ("p95Latency", STABLE): value(0.95),
    ("timePerToken", STABLE): value(0.05),
    ("queueTime", STABLE): value(0.05),
}


@dataclasses.dataclass(frozen=True)
class Case:
    canary: list[dict[str, str]]
    expect: dict[tuple[str, str], Expect]


CASES = {
    # A healthy canary has no tgi_request_failure series: 0 failures out of its 100 requests.
    "no_failure_series_is_an_error_rate_of_zero": Case(
        [series("tgi_request_count", CANARY, "0+5x80")],
        {("errorRate", CANARY): value(0), (SAMPLES, CANARY): value(100)},
    ),
    # The first failure of a kind creates its series at 1 inside the window: that 1 counts.
    # Validation failures (the client's fault) never count.
    "a_failure_series_born_in_the_window_counts_its_first_sample": Case(
        [
            series("tgi_request_count", CANARY, "0+5x80"),
            failures(CANARY, "generation", "_x70 1x10"),
            failures(CANARY, "validation", "_x75 1x5"),
        ],
        {("errorRate", CANARY): value(0.01), (SAMPLES, CANARY): value(100)},
    ),
    # Born at the very last scrape: a single sample, which increase() alone cannot use at all.
    "a_failure_series_with_one_sample_counts": Case(
        [series("tgi_request_count", CANARY, "0+5x80"), failures(CANARY, "incomplete", "_x80 2")],
        {("errorRate", CANARY): value(0.02), (SAMPLES, CANARY): value(100)},
    ),
    # A pod restart makes a new pod: pod a (80 requests in the window, an old failure that did not
    # move) is gone at 17m; pod b is born at 17.5m with 20 requests already served, reaches 120,
    # and fails once. 200 requests, 1 failure.
    "a_new_pod_counts_from_zero_and_a_gone_pod_keeps_its_counts": Case(
        [
            series("tgi_request_count", CANARY, "0+10x68", pod="a"),
            failures(CANARY, "incomplete", "_x20 1x48", pod="a"),
            series("tgi_request_count", CANARY, "_x70 20+10x10", pod="b"),
            failures(CANARY, "incomplete", "_x76 1x4", pod="b"),
        ],
        {("errorRate", CANARY): value(0.005), (SAMPLES, CANARY): value(200)},
    ),
    # TGI restarted inside its pod at 16m45s: the same series drop (request count 660 -> 5, and the
    # failure series vanishes, then is created again by the first failure after the restart). In
    # the window: 60 requests before the restart, 60 after; 3 failures, all after. increase()
    # extrapolates to the window's edges, hence a range.
    "a_series_that_drops_is_not_negative_and_keeps_its_counts": Case(
        [
            series("tgi_request_count", CANARY, "0+10x66 stale _ 5+5x11"),
            failures(CANARY, "incomplete", "_x40 3x26 stale _x10 1+1x2"),
        ],
        {("errorRate", CANARY): between(0.024, 0.026), (SAMPLES, CANARY): between(120, 127)},
    ),
    # Restarted between the last sample before the window (580) and its first one: counts from 0.
    "a_counter_that_restarted_just_before_the_window_counts_from_zero": Case(
        [
            series("tgi_request_count", CANARY, "0+10x58 stale _ 2+2x19"),
            failures(CANARY, "generation", "_x65 1x15"),
        ],
        {("errorRate", CANARY): value(0.025), (SAMPLES, CANARY): value(40)},
    ),
    # Pods that never served a request export no tgi_request_* series: no value, no samples
    # (Inconclusive), never an error rate of 0.
    "a_revision_that_has_not_served_yet_has_no_values": Case(
        [series("tgi_batch_max_total_tokens", CANARY, "4096x80")],
        {
            ("errorRate", CANARY): NOTHING,
            (SAMPLES, CANARY): NOTHING,
            ("p95Latency", CANARY): NOTHING,
            ("timePerToken", CANARY): NOTHING,
            ("queueTime", CANARY): NOTHING,
        },
    ),
    # Served earlier, idle in the window: 0 samples and an error rate of 0/0 (Inconclusive).
    "a_revision_idle_in_the_window_has_zero_samples": Case(
        [series("tgi_request_count", CANARY, "0+5x40 200x40")],
        {("errorRate", CANARY): NAN, (SAMPLES, CANARY): value(0)},
    ),
    # Latency histograms are created by the first completed request too: a canary whose series
    # appear at the last scrape (2 requests <= 0.5 s, 2 more <= 1 s) still has a p95 and means.
    "latency_histograms_born_in_the_window_count_their_first_observations": Case(
        [
            series("tgi_request_count", CANARY, "_x80 4"),
            series("tgi_request_duration_bucket", CANARY, "_x80 2", le="0.5"),
            series("tgi_request_duration_bucket", CANARY, "_x80 4", le="1"),
            series("tgi_request_duration_bucket", CANARY, "_x80 4", le="+Inf"),
            series("tgi_request_mean_time_per_token_duration_sum", CANARY, "_x80 0.2"),
            series("tgi_request_mean_time_per_token_duration_count", CANARY, "_x80 4"),
            series("tgi_request_queue_duration_sum", CANARY, "_x78 0.03 0.03 0.06"),
            series("tgi_request_queue_duration_count", CANARY, "_x78 1 1 2"),
        ],
        {
            ("errorRate", CANARY): value(0),
            (SAMPLES, CANARY): value(4),
            ("p95Latency", CANARY): value(0.95),
            ("timePerToken", CANARY): value(0.05),
            ("queueTime", CANARY): value(0.03),
        },
    ),
}


def promql(name: str, rev: str) -> str:
    """The query the operator runs for check ``name`` (or the sample count) and revision ``rev``."""
    queries = {q.name: q for q in engines.get("tgi").builtin_queries(NS, WINDOW)}
    value_q, samples_q = queries["errorRate" if name == SAMPLES else name].for_revision(rev)
    return samples_q if name == SAMPLES else value_q


def run_promtool(promtool: str, path: Path, input_series: list[dict[str, str]], tests: list[Any]) -> str:
    doc = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": input_series, "promql_expr_test": tests}],
    }
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")  # JSON is YAML
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_builtin_queries_give_the_right_numbers(promtool: str, case: Case, tmp_path: Path) -> None:
    expect = {**STABLE_EXPECT, **case.expect}
    input_series = STABLE_SERIES + case.canary
    checks = [e.test(promql(name, rev)) for (name, rev), e in expect.items()]
    failed = run_promtool(promtool, tmp_path / "case.yml", input_series, checks)
    if failed:
        # the checks say only "got 0"; ask again for every raw value to show what they were
        raw = [{"expr": promql(n, r), "eval_time": EVAL_AT, "exp_samples": []} for n, r in expect]
        got = run_promtool(promtool, tmp_path / "values.yml", input_series, raw)
        pytest.fail(f"{failed}\n--- raw values (each reported as unexpected) ---\n{got}")
