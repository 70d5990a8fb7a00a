"""docs/metrics.md lists exactly the series the operator's registries define."""

from __future__ import annotations

from kubetune.controllers import metricsdoc


def test_metrics_page_is_generated_from_the_registries() -> None:
    assert metricsdoc.PAGE.read_text() == metricsdoc.render(), (
        "docs/metrics.md is out of date: run python -m kubetune.controllers.metricsdoc"
    )


def test_every_family_has_help_text_and_a_kubetune_name() -> None:
    rows = metricsdoc.families(metricsdoc.registry())
    assert len(rows) >= 20
    for name, _kind, _labels, help_text in rows:
        assert name.startswith("kubetune_"), name
        assert help_text.strip(), name
