"""The chart's Grafana dashboards ask only for series the operator exports, and are well-formed
for the Grafana sidecar (the e2e test runs every query against a real Prometheus)."""

from __future__ import annotations

from kubetune.controllers import metricsdoc
from kubetune.testing import dashboards

HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def _exported() -> set[str]:
    names = set()
    for name, kind, _labels, _help in metricsdoc.families(metricsdoc.registry()):
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


def test_there_are_training_rollouts_and_operator_dashboards() -> None:
    loaded = dashboards.load()
    assert set(loaded) == {"training", "rollouts", "operator"}
    uids = [d["uid"] for d in loaded.values()]
    assert len(set(uids)) == len(uids)


def test_every_panel_queries_only_series_the_operator_exports() -> None:
    exported = _exported()
    for query in dashboards.queries():
        assert query.metrics(), f"{query}: no kubetune series in {query.expr!r}"
        unknown = query.metrics() - exported
        assert not unknown, f"{query}: {sorted(unknown)} are not in docs/metrics.md"


def test_every_panel_uses_the_datasource_variable_and_known_variables() -> None:
    for stem, dashboard in dashboards.load().items():
        names = {v["name"] for v in dashboard["templating"]["list"]}
        assert "datasource" in names, stem
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", (stem, panel["title"])
    variables = {"namespace": "ns", "__rate_interval": "1m", "__range": "1h"}
    for query in dashboards.queries():
        assert "$" not in query.substituted(variables), query


def test_every_exported_family_is_on_some_dashboard() -> None:
    used = set().union(*(q.metrics() for q in dashboards.queries()))
    missing = {
        name
        for name, kind, _labels, _help in metricsdoc.families(metricsdoc.registry())
        if not ({name} | ({name + s for s in HISTOGRAM_SUFFIXES} if kind == "histogram" else set())) & used
    }
    assert not missing, sorted(missing)
