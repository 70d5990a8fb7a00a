"""What a platform team sees after the e2e loop: the operator's series as a real Prometheus
scraped them, checked against docs/metrics.md, and every panel of the chart's dashboards
returning data from them."""

from __future__ import annotations

import math
import time
from pathlib import Path

from kubetune.controllers import metricsdoc
from kubetune.testing import dashboards
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.waiting import wait_for

JOB = "kubetune-operator"
SCRAPE_LABELS = {"__name__", "job", "instance", "le"}


def assert_scrape_matches_metrics_doc(prometheus: Prometheus) -> None:
    """Every documented family was scraped with its type and help (families without samples
    yet, such as error counters, too), and each one with samples carries exactly its labels."""
    documented = {
        name: (kind, labels, text) for name, kind, labels, text in metricsdoc.families(metricsdoc.registry())
    }
    scraped = {}
    for meta in prometheus.target_metadata(JOB):
        name = meta["metric"]
        if meta["type"] == "counter" and not name.endswith("_total"):
            name += "_total"  # OpenMetrics names a counter's family without the suffix
        if name.endswith("_created") and name.removesuffix("_created") + "_total" in documented:
            continue  # prometheus_client's creation time of a counter, a gauge in text format
        if name.endswith("_created") and name.removesuffix("_created") in documented:
            continue  # ... and of a histogram
        scraped[name] = (meta["type"], meta["help"])
    assert set(scraped) == set(documented), (sorted(scraped), sorted(documented))
    for name, (kind, labels, text) in documented.items():
        assert scraped[name] == (kind, text), (name, scraped[name])
        selector = f'{{__name__=~"{name}(_bucket|_count|_sum)?", job="{JOB}"}}'
        for series, _value in prometheus.series(selector):
            assert set(series) - SCRAPE_LABELS == set(labels), (name, series)


def panel_results(prometheus: Prometheus, namespace: str, since: float) -> dict[str, int]:
    """Each panel query's number of finite values, template variables as Grafana would set them
    with ``namespace`` selected and the dashboard's range covering the test."""
    span = f"{int(time.time() - since) + 30}s"
    variables = {"namespace": namespace, "__rate_interval": span, "__range": span}
    counts = {}
    for query in dashboards.queries():
        values = prometheus.series(query.substituted(variables))
        counts[str(query)] = sum(1 for _labels, value in values if math.isfinite(value))
    return counts


def assert_every_panel_returns_data(prometheus: Prometheus, namespace: str, since: float) -> None:
    def all_answer() -> dict[str, int] | None:
        counts = panel_results(prometheus, namespace, since)
        return counts if all(counts.values()) else None

    try:
        wait_for(all_answer, 30, "every dashboard panel to return data", interval=1.0)
    except Exception:
        empty = [q for q, n in panel_results(prometheus, namespace, since).items() if not n]
        raise AssertionError(f"panels without data: {empty}") from None


def export_panel_ranges(prometheus: Prometheus, namespace: str, since: float, path: Path) -> None:
    """Each panel query over the test's time range, for ``hack/render-dashboards.py``."""
    dashboards.export_ranges(
        prometheus.url, namespace, since, time.time(), path, source="the e2e test's FineTuneJobs and rollout"
    )
