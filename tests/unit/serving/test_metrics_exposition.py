"""TGI's metric names, types, labels and buckets, and the text format they are written in."""

from __future__ import annotations

import itertools
import re

import pytest

from kubetune.serving import metrics


@pytest.fixture
def tgi() -> metrics.TgiMetrics:
    return metrics.TgiMetrics(max_input_tokens=200, max_total_tokens=400)


def test_counters_have_no_total_suffix(tgi: metrics.TgiMetrics) -> None:
    tgi.request_count.inc()
    text = tgi.render()
    assert "# TYPE tgi_request_count counter\ntgi_request_count 1\n" in text
    assert not re.search(r"^tgi_\w+_total[ {]", text, re.M)


def test_nothing_is_exported_before_it_is_recorded_as_in_tgi(tgi: metrics.TgiMetrics) -> None:
    # TGI's exporter lists a series only once the router touched it: no series at zero
    assert tgi.render() == ""
    tgi.batch_max_total_tokens.set(4096)  # what TGI sets at start-up
    assert tgi.render() == (
        "# HELP tgi_batch_max_total_tokens Token budget a batch may use.\n"
        "# TYPE tgi_batch_max_total_tokens gauge\ntgi_batch_max_total_tokens 4096\n"
    )
    assert tgi.request_failure.value(err="generation") == 0  # untouched reads as 0, still unexported


def test_a_failure_series_is_born_at_its_first_failure(tgi: metrics.TgiMetrics) -> None:
    tgi.request_count.inc()
    tgi.request_failure.inc(err="generation")
    text = tgi.render()
    assert 'tgi_request_failure{err="generation"} 1\n' in text
    assert re.findall(r"^tgi_request_failure\{.*", text, re.M) == ['tgi_request_failure{err="generation"} 1']


def test_histograms_gauges_and_the_summary_appear_with_their_first_record(tgi: metrics.TgiMetrics) -> None:
    tgi.request_duration.observe(0.1)
    tgi.batch_forward_duration.observe(0.01, method="prefill")
    tgi.queue_size.add(1)
    text = tgi.render()
    assert "tgi_request_duration_count 1\n" in text and "tgi_request_queue_duration" not in text
    assert 'tgi_batch_forward_duration_count{method="prefill"} 1\n' in text
    assert 'method="decode"' not in text
    assert "tgi_queue_size 1\n" in text and "tgi_batch_current_size" not in text
    assert "tgi_request_skipped_tokens" not in text
    tgi.request_skipped_tokens.observe(0)
    assert 'tgi_request_skipped_tokens{quantile="0.5"} 0\n' in tgi.render()


def test_duration_buckets_are_tgis_35_geometric_ones() -> None:
    buckets = metrics.duration_buckets()
    assert len(buckets) == 35
    assert buckets[0] == pytest.approx(0.00015)
    assert buckets[-1] == pytest.approx(145.61, rel=1e-4)
    assert all(b / a == pytest.approx(1.5) for a, b in itertools.pairwise(buckets))


def test_token_histograms_have_100_linear_buckets(tgi: metrics.TgiMetrics) -> None:
    assert (
        tgi.request_input_length.buckets[:2] == [2.0, 4.0] and tgi.request_input_length.buckets[-1] == 200.0
    )
    assert (
        len(tgi.request_generated_tokens.buckets) == 100 and tgi.request_generated_tokens.buckets[-1] == 400.0
    )
    assert tgi.batch_next_size.buckets == [float(n) for n in range(1, 1025)]


def test_histogram_buckets_are_cumulative(tgi: metrics.TgiMetrics) -> None:
    for value in (1, 3, 3, 500):
        tgi.request_input_length.observe(value)
    text = tgi.render()
    assert 'tgi_request_input_length_bucket{le="2"} 1\n' in text
    assert 'tgi_request_input_length_bucket{le="4"} 3\n' in text
    assert 'tgi_request_input_length_bucket{le="200"} 3\n' in text
    assert 'tgi_request_input_length_bucket{le="+Inf"} 4\n' in text
    assert "tgi_request_input_length_sum 507\ntgi_request_input_length_count 4\n" in text


def test_batch_metrics_are_labelled_by_method(tgi: metrics.TgiMetrics) -> None:
    tgi.batch_forward_duration.observe(0.01, method="decode")
    assert 'tgi_batch_forward_duration_count{method="decode"} 1' in tgi.render()
    with pytest.raises(ValueError, match="takes labels"):
        tgi.batch_forward_duration.observe(0.01)


def test_skipped_tokens_is_a_summary_with_tgis_quantiles(tgi: metrics.TgiMetrics) -> None:
    for value in range(11):
        tgi.request_skipped_tokens.observe(value)
    text = tgi.render()
    assert "# TYPE tgi_request_skipped_tokens summary" in text
    assert 'tgi_request_skipped_tokens{quantile="0.5"} 5\n' in text
    assert 'tgi_request_skipped_tokens{quantile="1"} 10\n' in text
    assert re.findall(r'quantile="([^"]+)"', text) == ["0", "0.5", "0.9", "0.95", "0.99", "0.999", "1"]


def test_every_family_has_help_and_type(tgi: metrics.TgiMetrics) -> None:
    tgi.request_duration.observe(0.1)
    tgi.request_count.inc()
    text = tgi.render()
    helps = re.findall(r"^# HELP (\S+) ", text, re.M)
    types = re.findall(r"^# TYPE (\S+) ", text, re.M)
    assert helps == types and len(types) == len(set(types))
    assert (
        "tgi_request_duration" in types and "kubetune_serve_adapter_requests_total" not in types
    )  # no series yet


def test_values_are_never_written_in_exponent_form() -> None:
    assert metrics.format_value(0.00015) == "0.00015"
    assert metrics.format_value(1e-7) == "0.0000001"
    assert metrics.format_value(3.0) == "3"
    assert metrics.format_value(float("inf")) == "+Inf"


def test_label_values_are_escaped() -> None:
    counter = metrics.Counter("x_total", "help", ["adapter"])
    counter.inc(adapter='a"b\\c')
    assert 'x_total{adapter="a\\"b\\\\c"} 1' in counter.render()
