"""Canary verdicts compare canary with stable; too few samples is Inconclusive, never Pass."""

import math
import re

from kubetune.api.v1alpha1.modeldeployment import AnalysisSpec
from kubetune.controllers.modeldeployment import analysis, engines
from kubetune.controllers.modeldeployment.analysis import Observation

SPEC = AnalysisSpec.model_validate({"minSamples": 50})


def verdicts(obs: dict[str, Observation], spec: AnalysisSpec = SPEC) -> dict[str, str]:
    _, out = analysis.judge(spec, obs)
    return {v.name: v.verdict for v in out}


def test_healthy_canary_passes_every_builtin_check() -> None:
    obs = {
        "errorRate": Observation(0.01, 0.01, 200),
        "p95Latency": Observation(0.30, 0.28, 200),
        "timePerToken": Observation(0.02, 0.02, 200),
        "queueTime": Observation(0.005, 0.004, 200),
    }
    overall, _ = analysis.judge(SPEC, obs)
    assert overall == "Pass"


def test_error_rate_increase_fails() -> None:
    assert verdicts({"errorRate": Observation(0.30, 0.01, 200)})["errorRate"] == "Fail"


def test_latency_ratio_is_relative_to_stable_in_the_same_window() -> None:
    # a slow cluster: both slow, ratio fine
    assert verdicts({"p95Latency": Observation(2.0, 1.9, 200)})["p95Latency"] == "Pass"
    assert verdicts({"p95Latency": Observation(2.0, 0.5, 200)})["p95Latency"] == "Fail"


def test_too_few_samples_is_inconclusive_not_pass() -> None:
    overall, out = analysis.judge(SPEC, {"errorRate": Observation(0.0, 0.0, 10)})
    assert overall == "Inconclusive"
    assert "10 canary requests < minSamples 50" in out[0].message


def test_nan_or_missing_values_are_inconclusive() -> None:
    assert verdicts({"p95Latency": Observation(math.nan, 0.2, 200)})["p95Latency"] == "Inconclusive"
    assert verdicts({"p95Latency": Observation(0.2, None, 200)})["p95Latency"] == "Inconclusive"


def test_custom_metric_threshold_range() -> None:
    spec = AnalysisSpec.model_validate(
        {"minSamples": 1, "metrics": [{"name": "refusals", "query": "x", "threshold": {"max": 0.05}}]}
    )
    assert verdicts({"refusals": Observation(0.01, None, 5)}, spec)["refusals"] == "Pass"
    assert verdicts({"refusals": Observation(0.2, None, 5)}, spec)["refusals"] == "Fail"
    assert verdicts({}, spec)["refusals"] == "Inconclusive"


def test_no_checks_at_all_is_inconclusive() -> None:
    overall, _ = analysis.judge(SPEC, {})
    assert overall == "Inconclusive"


def test_queries_select_each_revision_and_exclude_validation_errors() -> None:
    queries = {q.name: q for q in engines.get("tgi").builtin_queries("ml", "5m")}
    err, count = queries["errorRate"].for_revision("abc")
    # what the numbers are is checked by Prometheus itself in test_canary_promql.py
    assert count.startswith("sum(") and "$REVISION" not in count + err
    selectors = set(re.findall(r"\{[^}]*\}", count + err))
    assert selectors == {
        '{namespace="ml",kubetune_io_revision="abc"}',
        '{namespace="ml",kubetune_io_revision="abc",err!="validation"}',
    }
    assert "tgi_request_duration_bucket" in queries["p95Latency"].value
    filled = analysis.custom_query(
        "rate(x{rev='{{canary}}'}[{{window}}])", canary="c1", stable="s1", namespace="ml", window="2m"
    )
    assert filled == "rate(x{rev='c1'}[2m])"
