"""TGI's Prometheus metrics, with TGI's names, types, labels and buckets, rendered as text.

The canary analysis queries these series by name (``tgi_request_failure``, ``tgi_request_duration``
...), so they must match text-generation-inference exactly. TGI exports through
metrics-exporter-prometheus, whose counters have **no** ``_total`` suffix; ``prometheus_client``
always appends one, so this module keeps its own small registry and renders the text format itself.

Series appear when TGI's would. TGI's router records with ``metrics::counter!(name,
labels).increment(1)`` (``gauge!``, ``histogram!`` alike) at the moment of the event, and the
exporter lists a series only once it has been touched: ``tgi_request_count`` and the request
histograms appear with the first request, ``tgi_request_failure{err="x"}`` with the first failure
of kind x, ``tgi_batch_*{method}`` with the first batch, ``tgi_queue_size`` with the first
queued request; only ``tgi_batch_max_total_tokens`` is set at start-up. So every series here is
created by its first record, never pre-registered at zero: a canary check that works against
this runtime must also work against TGI (a healthy pod has *no* failure series, and a failure
series is born at 1). ``value()``/``count()`` read an untouched series as 0.

Remaining differences from TGI: every family here carries HELP text (TGI describes only some);
``tgi_request_skipped_tokens`` is observed once per request (TGI: once per decoding step), and
always 0.

Thread-safe (the batcher thread and the event loop both record). Must not import torch or know
about HTTP routes.
"""

from __future__ import annotations

import bisect
import collections
import math
import threading
from collections.abc import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SUMMARY_QUANTILES = (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
_SUMMARY_WINDOW = 4096  # observations a summary keeps for its quantiles

LabelValues = tuple[str, ...]


def duration_buckets() -> list[float]:
    """TGI's 35 geometric buckets, computed as TGI does (repeated multiplication, not powers)."""
    buckets: list[float] = []
    value = 0.0001
    for _ in range(35):
        value *= 1.5
        buckets.append(value)
    return buckets


def linear_buckets(maximum: int) -> list[float]:
    """100 linear buckets of ``maximum / 100``, TGI's layout for token-count histograms."""
    width = maximum / 100.0
    return [width * (k + 1) for k in range(100)]


def format_value(value: float) -> str:
    """Shortest round-trip decimal, never in exponent form; integral values without a point."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        text = f"{value:.20f}".rstrip("0")
    return text


class _Family:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labels = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, values: dict[str, str]) -> LabelValues:
        if set(values) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {sorted(values)}")
        return tuple(values[label] for label in self.labels)

    def _label_text(self, key: LabelValues, extra: Iterable[tuple[str, str]] = ()) -> str:
        pairs = [*zip(self.labels, key, strict=True), *extra]
        if not pairs:
            return ""
        return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"

    def render(self) -> list[str]:
        with self._lock:
            samples = self._samples()
        if not samples:
            return []
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}", *samples]

    def _samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Family):
    """A counter family; a series exists from its first :meth:`inc` on (TGI's exporter does the same)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def _samples(self) -> list[str]:
        return [
            f"{self.name}{self._label_text(k)} {format_value(v)}" for k, v in sorted(self._values.items())
        ]


class Gauge(_Family):
    """A gauge without labels, exported from its first :meth:`set` or :meth:`add` on."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._value: float | None = None  # None: never touched, not exported

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def add(self, amount: float) -> None:
        with self._lock:
            self._value = (self._value or 0.0) + amount

    def value(self) -> float:
        with self._lock:
            return self._value or 0.0

    def _samples(self) -> list[str]:
        return [] if self._value is None else [f"{self.name} {format_value(self._value)}"]


class _HistogramSeries:
    __slots__ = ("count", "counts", "total")

    def __init__(self, n: int) -> None:
        self.counts = [0] * n
        self.count = 0
        self.total = 0.0


class Histogram(_Family):
    """A histogram family; a series exists from its first :meth:`observe` on."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = list(buckets)
        self._series: dict[LabelValues, _HistogramSeries] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _HistogramSeries(len(self.buckets))
            index = bisect.bisect_left(self.buckets, value)
            if index < len(self.buckets):
                series.counts[index] += 1  # per-bucket; made cumulative when rendered
            series.count += 1
            series.total += value

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
            return series.count if series else 0

    def _samples(self) -> list[str]:
        out: list[str] = []
        for key, series in sorted(self._series.items()):
            cumulative = 0
            for bound, n in zip(self.buckets, series.counts, strict=True):
                cumulative += n
                out.append(
                    f"{self.name}_bucket{self._label_text(key, [('le', format_value(bound))])} {cumulative}"
                )
            out.append(f"{self.name}_bucket{self._label_text(key, [('le', '+Inf')])} {series.count}")
            out.append(f"{self.name}_sum{self._label_text(key)} {format_value(series.total)}")
            out.append(f"{self.name}_count{self._label_text(key)} {series.count}")
        return out


class Summary(_Family):
    """A summary over the most recent observations (TGI's rolling summary, simplified)."""

    kind = "summary"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._window: collections.deque[float] = collections.deque(maxlen=_SUMMARY_WINDOW)
        self._count = 0
        self._total = 0.0

    def observe(self, value: float) -> None:
        with self._lock:
            self._window.append(value)
            self._count += 1
            self._total += value

    def _samples(self) -> list[str]:
        if not self._count:
            return []  # not observed yet: TGI's exporter has no series either
        ordered = sorted(self._window)
        out = []
        for q in SUMMARY_QUANTILES:
            value = ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
            out.append(f'{self.name}{{quantile="{format_value(q)}"}} {format_value(value)}')
        out.append(f"{self.name}_sum {format_value(self._total)}")
        out.append(f"{self.name}_count {self._count}")
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class TgiMetrics:
    """Every metric TGI's router exports, plus kubetune's per-adapter request counter."""

    def __init__(self, max_input_tokens: int, max_total_tokens: int) -> None:
        d = duration_buckets()
        self.request_count = Counter("tgi_request_count", "Requests received by a generate or chat route.")
        self.request_success = Counter("tgi_request_success", "Requests that completed.")
        self.request_failure = Counter("tgi_request_failure", "Requests that failed, by reason.", ["err"])
        self.batch_inference_count = Counter(
            "tgi_batch_inference_count", "Batched model steps started.", ["method"]
        )
        self.batch_inference_success = Counter(
            "tgi_batch_inference_success", "Batched model steps that succeeded.", ["method"]
        )
        self.batch_inference_failure = Counter(
            "tgi_batch_inference_failure", "Batched model steps that failed.", ["method"]
        )
        self.batch_concat = Counter(
            "tgi_batch_concat", "Batches concatenated into a running batch.", ["reason"]
        )
        self.queue_size = Gauge("tgi_queue_size", "Requests waiting for a batch.")
        self.batch_current_size = Gauge("tgi_batch_current_size", "Requests in the running batch.")
        self.batch_current_max_tokens = Gauge(
            "tgi_batch_current_max_tokens", "Token budget (input + max new tokens) of the running batch."
        )
        self.batch_max_total_tokens = Gauge("tgi_batch_max_total_tokens", "Token budget a batch may use.")
        self.request_duration = Histogram("tgi_request_duration", "Request latency in seconds.", d)
        self.request_validation_duration = Histogram(
            "tgi_request_validation_duration", "Validation and tokenization time in seconds.", d
        )
        self.request_queue_duration = Histogram(
            "tgi_request_queue_duration", "Time spent waiting for a batch in seconds.", d
        )
        self.request_inference_duration = Histogram(
            "tgi_request_inference_duration", "Time from batch start to last token in seconds.", d
        )
        self.request_mean_time_per_token_duration = Histogram(
            "tgi_request_mean_time_per_token_duration", "Inference time per generated token in seconds.", d
        )
        self.batch_forward_duration = Histogram(
            "tgi_batch_forward_duration",
            "Model forward time per batch step in seconds.",
            d,
            ["method"],
        )
        self.batch_decode_duration = Histogram(
            "tgi_batch_decode_duration",
            "Token choice and detokenization time per step in seconds.",
            d,
            ["method"],
        )
        self.batch_filter_duration = Histogram(
            "tgi_batch_filter_duration",
            "Time removing finished requests from a batch in seconds.",
            d,
            ["method"],
        )
        self.batch_inference_duration = Histogram(
            "tgi_batch_inference_duration", "Whole batch step time in seconds.", d, ["method"]
        )
        self.batch_concat_duration = Histogram(
            "tgi_batch_concat_duration", "Time concatenating batches in seconds.", d, ["method"]
        )
        self.request_input_length = Histogram(
            "tgi_request_input_length", "Input tokens per request.", linear_buckets(max_input_tokens)
        )
        self.request_generated_tokens = Histogram(
            "tgi_request_generated_tokens", "Generated tokens per request.", linear_buckets(max_total_tokens)
        )
        self.request_max_new_tokens = Histogram(
            "tgi_request_max_new_tokens", "max_new_tokens per request.", linear_buckets(max_total_tokens)
        )
        self.batch_next_size = Histogram(
            "tgi_batch_next_size", "Requests in each new batch.", [float(n) for n in range(1, 1025)]
        )
        self.request_skipped_tokens = Summary(
            "tgi_request_skipped_tokens", "Speculated tokens skipped per request."
        )
        self.adapter_requests = Counter(
            "kubetune_serve_adapter_requests_total",
            "Requests per adapter (base = no adapter) and outcome (success or a tgi_request_failure reason).",
            ["adapter", "outcome"],
        )
        self.families: list[_Family] = [v for v in vars(self).values() if isinstance(v, _Family)]

    def render(self) -> str:
        lines: list[str] = []
        for family in self.families:
            block = family.render()
            if block:
                lines.extend(block)
                lines.append("")
        return "\n".join(lines)
