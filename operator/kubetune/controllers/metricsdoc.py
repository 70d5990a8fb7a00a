"""``docs/metrics.md``: every series of the operator's ``/metrics``, from the registries.

``python -m kubetune.controllers.metricsdoc`` rewrites the page; ``--check`` fails when it
differs (a unit test runs the check), so the page cannot drift from the code. Reads metric
definitions only; starts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from kubetune.controllers import operator
from kubetune.controllers.finetunejob.metrics import Metrics
from kubetune.controllers.modeldeployment import metrics as mdep_metrics

PAGE = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"

HEADER = """# Operator metrics

Every series the operator serves on `/metrics` (port `metrics.port` of the chart, 8080 by
default). Generated from the registries by `python -m kubetune.controllers.metricsdoc`; a unit
test fails when this page and the code differ, and the e2e test (`tests/e2e/observability.py`)
checks each name, type, help text and label set against a real Prometheus scrape of the
operator after real FineTuneJobs, a promotion and a rollback.

Per-object series carry `namespace` and `name` and are removed when the object is deleted, so
their number is bounded by the live FineTuneJobs and ModelDeployments. Counters and histograms
also come with prometheus_client's `_created` series (when the series began), which nothing
here uses. The chart's Grafana dashboards (`dashboards.enabled`) and alert rules
(`prometheusRule.enabled`) use only the series below; its ServiceMonitor keeps their
`namespace` label (`honorLabels`).

| name | type | labels | help |
|---|---|---|---|
"""


def registry() -> CollectorRegistry:
    """The operator's registry as :func:`operator.build` assembles it, without a cluster."""
    metrics = Metrics()
    mdep_metrics.Metrics(metrics.registry)
    operator.leader_gauge(metrics.registry)
    return metrics.registry


def families(reg: CollectorRegistry) -> list[tuple[str, str, list[str], str]]:
    """(name as scraped, type, labels, help) per metric family, sorted by name."""
    rows = []
    for collector in list(reg._collector_to_names):  # the registered collectors
        for desc in collector.describe():  # type: ignore[attr-defined]
            name = desc.name + "_total" if desc.type == "counter" else desc.name
            labels = list(getattr(collector, "_labelnames", ()))
            rows.append((name, desc.type, labels, desc.documentation))
    return sorted(rows)


def render() -> str:
    lines = [HEADER.rstrip("\n")]
    for name, kind, labels, help_text in families(registry()):
        shown = ", ".join(f"`{label}`" for label in labels) or "—"
        lines.append(f"| `{name}` | {kind} | {shown} | {help_text} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when docs/metrics.md differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is out of date: run python -m kubetune.controllers.metricsdoc", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
