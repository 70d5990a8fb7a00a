"""/metrics: TGI's names, types and buckets, accepted by promtool, counting what happened."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from kubetune.testing.servers import Server

from .conftest import MAX_INPUT_TOKENS, metric_value

CONTRACT = {
    "tgi_request_count": "counter",
    "tgi_request_success": "counter",
    "tgi_request_failure": "counter",
    "tgi_batch_inference_count": "counter",
    "tgi_batch_inference_success": "counter",
    "tgi_queue_size": "gauge",
    "tgi_batch_current_size": "gauge",
    "tgi_batch_current_max_tokens": "gauge",
    "tgi_batch_max_total_tokens": "gauge",
    "tgi_request_duration": "histogram",
    "tgi_request_validation_duration": "histogram",
    "tgi_request_queue_duration": "histogram",
    "tgi_request_inference_duration": "histogram",
    "tgi_request_mean_time_per_token_duration": "histogram",
    "tgi_batch_forward_duration": "histogram",
    "tgi_batch_decode_duration": "histogram",
    "tgi_batch_inference_duration": "histogram",
    "tgi_request_input_length": "histogram",
    "tgi_request_generated_tokens": "histogram",
    "tgi_request_max_new_tokens": "histogram",
    "tgi_batch_next_size": "histogram",
    "tgi_request_skipped_tokens": "summary",
}
# Families of the contract that exist only once their event happened (none in _traffic): a model
# step that raised, a batch concatenated into a running one.
EVENT_ONLY = {"tgi_batch_inference_failure": "counter", "tgi_batch_concat": "counter"}

# What promtool's linter says about names TGI's contract fixes (no `_total` on counters; two
# counters end in `_count`). Anything else it reports is a real problem.
ACCEPTED_LINT = re.compile(
    r'^(tgi_\w+) (counter metrics should have "_total" suffix'
    r'|non-histogram and non-summary metrics should not have "_count" suffix)$'
)


def _traffic(server: Server) -> None:
    assert server.generate("reset a password", max_new_tokens=3).status_code == 200
    assert server.post(
        "/generate_stream", {"inputs": "close an account", "parameters": {"max_new_tokens": 2}}
    ).ok
    assert server.generate("", max_new_tokens=3).status_code == 422


def test_every_contract_metric_has_its_type(server: Server) -> None:
    _traffic(server)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", server.metrics(), re.M))
    assert {name: types.get(name) for name in CONTRACT} == CONTRACT
    assert {(name, kind) for name, kind in types.items() if name in EVENT_ONLY} <= set(EVENT_ONLY.items())
    assert not any(name.endswith("_total") for name in types if name.startswith("tgi_"))


def test_buckets_follow_tgi(server: Server) -> None:
    _traffic(server)  # histograms exist only once observed
    text = server.metrics()
    duration = re.findall(r'^tgi_request_duration_bucket\{le="([^"]+)"\}', text, re.M)
    assert len(duration) == 36 and duration[-1] == "+Inf"
    assert float(duration[0]) == pytest.approx(0.00015) and float(duration[-2]) == pytest.approx(
        145.61, rel=1e-3
    )
    inputs = re.findall(r'^tgi_request_input_length_bucket\{le="([^"]+)"\}', text, re.M)
    assert len(inputs) == 101
    assert float(inputs[0]) == pytest.approx(MAX_INPUT_TOKENS / 100) and float(inputs[-2]) == pytest.approx(
        MAX_INPUT_TOKENS
    )
    quantiles = re.findall(r'^tgi_request_skipped_tokens\{quantile="([^"]+)"\}', text, re.M)
    assert quantiles == ["0", "0.5", "0.9", "0.95", "0.99", "0.999", "1"]


def test_series_appear_on_first_use_as_in_tgi(fresh_server: Server) -> None:
    """TGI pre-registers nothing: a series exists once the router has recorded into it."""
    started = fresh_server.metrics()
    # only what TGI sets at start-up; no request series, no failure series, not even at 0
    assert set(re.findall(r"^(tgi_\w+?)(?:\{| )", started, re.M)) == {"tgi_batch_max_total_tokens"}

    assert fresh_server.generate("reset a password", max_new_tokens=2).status_code == 200
    served = fresh_server.metrics()
    assert metric_value(served, "tgi_request_count") == 1
    assert metric_value(served, "tgi_request_duration_count") == 1
    assert "tgi_queue_size " in served and "tgi_request_skipped_tokens_count 1" in served
    assert not re.search(r"^tgi_request_failure", served, re.M)  # a healthy pod has none at all

    assert fresh_server.generate("", max_new_tokens=2).status_code == 422
    failed = fresh_server.metrics()
    # born at 1 by its first failure; the other reasons still do not exist
    assert re.findall(r"^tgi_request_failure.*$", failed, re.M) == ['tgi_request_failure{err="validation"} 1']
    assert not re.search(r"^tgi_(batch_inference_failure|batch_concat)[{ ]", failed, re.M)


def test_counters_move_with_requests(server: Server) -> None:
    before = server.metrics()
    _traffic(server)
    after = server.metrics()

    def delta(series: str) -> float:
        return metric_value(after, series) - metric_value(before, series)

    assert delta("tgi_request_count") == 3
    assert delta("tgi_request_success") == 2
    assert delta('tgi_request_failure{err="validation"}') == 1
    assert delta("tgi_request_duration_count") == 2
    assert delta("tgi_request_generated_tokens_sum") == 5
    assert delta('kubetune_serve_adapter_requests_total{adapter="base",outcome="success"}') == 2


def test_promtool_accepts_the_metrics(server: Server) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("KUBETUNE_REQUIRE_PROMETHEUS"):
            pytest.fail(
                "KUBETUNE_REQUIRE_PROMETHEUS is set but promtool is missing (apt-get install prometheus)"
            )
        pytest.skip(
            "promtool not found (apt-get install prometheus); set KUBETUNE_REQUIRE_PROMETHEUS=1 to fail"
        )
    _traffic(server)
    text = server.metrics()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    # exit 1: the text could not be parsed; exit 3: lint findings, checked one by one below
    assert result.returncode in (0, 3), result.stderr
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    unexpected = [line for line in problems if not ACCEPTED_LINT.match(line)]
    assert unexpected == []
    flagged = {ACCEPTED_LINT.match(line).group(1) for line in problems}  # type: ignore[union-attr]
    # Only TGI's own counters may be flagged: those of the contract, and those that exist only
    # once their event happened (EVENT_ONLY, e.g. tgi_batch_concat once a batch was concatenated).
    tgi_counters = set(re.findall(r"^# TYPE (tgi_\w+) counter$", text, re.M))
    assert {name for name, kind in CONTRACT.items() if kind == "counter"} <= tgi_counters
    assert tgi_counters <= {name for name, kind in (CONTRACT | EVENT_ONLY).items() if kind == "counter"}
    assert flagged <= tgi_counters, flagged - tgi_counters
