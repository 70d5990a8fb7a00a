"""Which Prometheus a ModelDeployment's analysis may ask, and where its custom queries go.

The spec's ``prometheusUrl`` is the tenant's choice: only URLs the operator's settings allow are
ever contacted. Custom queries, the tenant's own PromQL, go only to the tenant proxy (which
enforces the namespace). The integration level (tests/integration/security) runs the same
decisions against real servers and the real prom-label-proxy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.api.v1alpha1.modeldeployment import ModelDeploymentStatus
from kubetune.controllers.modeldeployment import observe, tenancy
from kubetune.controllers.modeldeployment.reconcile import Reconciler
from kubetune.controllers.settings import Settings, SettingsError

OPERATOR = "http://prometheus.monitoring:9090"
TEAM = "http://prometheus.team-a:9090"
PROXY = "http://prom-label-proxy.monitoring:8080"
CUSTOM = [{"name": "refusals", "query": 'sum(refusals{namespace="other"})', "threshold": {"max": 1}}]


def test_a_url_the_settings_do_not_allow_gets_no_plan_and_a_one_line_reason() -> None:
    plan = tenancy.plan("http://169.254.169.254/latest", operator_url=OPERATOR, tenant_url=PROXY)
    assert plan.url is None and plan.tenant_url is None
    assert plan.problem == tenancy.NOT_ALLOWED and "\n" not in plan.problem
    assert "spec.rollout.analysis.prometheusUrl" in plan.problem and "prometheus.allowedUrls" in plan.problem


@pytest.mark.parametrize(
    "url",
    [
        OPERATOR + ".evil.example",  # a prefix of an allowed URL is not that URL
        OPERATOR + "@evil.example",
        OPERATOR + "/../admin",
        "https://prometheus.monitoring:9090",  # another scheme is another URL
        TEAM + "/",  # listed only when the platform lists it
    ],
)
def test_only_exact_matches_are_allowed(url: str) -> None:
    assert not tenancy.allowed(url, OPERATOR, [])
    assert tenancy.plan(url, operator_url=OPERATOR).problem == tenancy.NOT_ALLOWED


def test_the_operators_own_url_and_listed_urls_are_allowed_trailing_slash_aside() -> None:
    assert tenancy.plan(OPERATOR + "/", operator_url=OPERATOR, tenant_url=PROXY) == tenancy.Plan(
        OPERATOR, tenant_url=PROXY
    )
    listed = tenancy.plan(TEAM, operator_url=OPERATOR, allowed_urls=[TEAM + "/"], tenant_url=PROXY)
    # another Prometheus: built-in checks go there, custom queries nowhere (the proxy fronts ours)
    assert listed == tenancy.Plan(TEAM, custom_problem=tenancy.OTHER_PROMETHEUS)


def test_without_a_spec_url_the_operators_prometheus_and_its_tenant_proxy_are_used() -> None:
    assert tenancy.plan(None, operator_url=OPERATOR, tenant_url=PROXY + "/") == tenancy.Plan(
        OPERATOR, tenant_url=PROXY
    )


def test_without_a_tenant_proxy_custom_queries_say_what_the_platform_must_set() -> None:
    plan = tenancy.plan(None, operator_url=OPERATOR)
    assert plan.url == OPERATOR and plan.tenant_url is None
    assert plan.custom_problem == tenancy.NO_TENANT_PROXY
    assert "prometheus.tenantProxyUrl" in plan.custom_problem and "-label namespace" in plan.custom_problem


def test_no_prometheus_at_all_names_the_chart_value() -> None:
    plan = tenancy.plan(None, operator_url=None)
    assert plan.url is None and "prometheus.url" in (plan.problem or "")


def test_settings_read_the_allowlist_and_the_tenant_proxy_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "KUBETUNE_PROMETHEUS_URL": OPERATOR + "/",
            "KUBETUNE_PROMETHEUS_ALLOWED_URLS": f" {TEAM}/ ,, http://prometheus.team-b:9090",
            "KUBETUNE_PROMETHEUS_TENANT_URL": PROXY,
            "KUBETUNE_PROMETHEUS_TIMEOUT": "2.5",
        }
    )
    assert settings.prometheus_url == OPERATOR
    assert settings.prometheus_allowed_urls == (TEAM, "http://prometheus.team-b:9090")
    assert settings.prometheus_tenant_url == PROXY and settings.prometheus_timeout_s == 2.5
    assert Settings.from_env({}).prometheus_allowed_urls == ()  # default: none beyond the configured one


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KUBETUNE_PROMETHEUS_ALLOWED_URLS", "prometheus.team-a:9090"),
        ("KUBETUNE_PROMETHEUS_TENANT_URL", "file:///etc/passwd"),
        ("KUBETUNE_PROMETHEUS_TIMEOUT", "0"),
    ],
)
def test_unusable_prometheus_settings_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value})
    assert str(err.value).startswith(name) and "\n" not in str(err.value)


# --- the reconciler acts on the plan ------------------------------------------------------------


class Recorder:
    """A Prometheus client factory recording which URLs got a client and what each was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, url: str) -> Any:
        recorder = self

        class Client:
            def query(
                self, promql: str, at: float | None = None, params: dict[str, str] | None = None
            ) -> float:
                recorder.asked.append((url, promql, dict(params or {})))
                return 0.0 if "failure" in promql else 100.0

            def query_by(
                self, promql: str, label: str, at: float | None = None, params: dict[str, str] | None = None
            ) -> dict[str, float]:
                recorder.asked.append((url, promql, dict(params or {})))
                return {"0.1": 50.0, "+Inf": 100.0}  # a histogram's cumulative buckets by le

        return Client()


def analyse(settings: Settings, **analysis: Any) -> tuple[Any, Recorder]:
    recorder = Recorder()
    mdep = ModelDeployment.model_validate(
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "bot", "namespace": "team-a"},
            "spec": {
                "baseModel": {"uri": "pvc://data/model"},
                "rollout": {
                    "steps": [{"setWeight": 50}],
                    "analysis": {"interval": "10s", "window": "30s", "minSamples": 1, **analysis},
                },
            },
        }
    )
    status = ModelDeploymentStatus(canary_revision="c0ffee", stable_revision="5ab1e")
    rec = Reconciler(None, settings, prometheus_client=recorder)  # type: ignore[arg-type]
    return rec._analyse(mdep, status, datetime(2026, 1, 1, tzinfo=UTC)), recorder


def test_a_spec_url_outside_the_allowlist_is_never_asked_and_the_analysis_holds() -> None:
    outcome, recorder = analyse(
        Settings(prometheus_url=OPERATOR, prometheus_tenant_url=PROXY),
        prometheusUrl="http://attacker.example:9090",
        metrics=CUSTOM,
    )
    assert recorder.asked == []
    assert outcome.verdict == "Inconclusive" and not outcome.reachable
    assert outcome.message == tenancy.NOT_ALLOWED


def test_custom_queries_go_only_to_the_tenant_proxy_with_the_objects_namespace() -> None:
    outcome, recorder = analyse(
        Settings(prometheus_url=OPERATOR, prometheus_tenant_url=PROXY), metrics=CUSTOM
    )
    custom = [(url, params) for url, promql, params in recorder.asked if "refusals" in promql]
    assert custom == [(PROXY, {"namespace": "team-a"})]
    assert all(url == OPERATOR for url, promql, _ in recorder.asked if "refusals" not in promql)
    assert next(m for m in outcome.metrics if m.name == "refusals").verdict == "Fail"  # 100 > 1


def test_the_statistical_judge_asks_its_histograms_of_the_operators_prometheus_only() -> None:
    outcome, recorder = analyse(
        Settings(prometheus_url=OPERATOR, prometheus_tenant_url=PROXY), judge="statistical", metrics=CUSTOM
    )
    buckets = [(url, promql) for url, promql, _ in recorder.asked if promql.startswith("sum by (le)")]
    assert len(buckets) == 6 and {url for url, _ in buckets} == {OPERATOR}  # 3 histograms x 2 revisions
    latency = [m for m in outcome.metrics if m.name in ("p95Latency", "timePerToken", "queueTime")]
    assert len(latency) == 3 and all(m.p_value is not None for m in latency), latency


def test_without_a_tenant_proxy_a_custom_query_is_sent_nowhere_and_is_inconclusive() -> None:
    outcome, recorder = analyse(Settings(prometheus_url=OPERATOR), metrics=CUSTOM)
    assert recorder.asked and not any("refusals" in promql for _, promql, _ in recorder.asked)
    refusals = next(m for m in outcome.metrics if m.name == "refusals")
    assert refusals.verdict == "Inconclusive" and refusals.message == tenancy.NO_TENANT_PROXY
    # the built-in checks still ran and passed
    assert {m.verdict for m in outcome.metrics if m.name != "refusals"} == {"Pass"}


def test_one_client_per_url_is_kept_across_analyses() -> None:
    made: list[str] = []
    recorder = Recorder()

    def factory(url: str) -> Any:
        made.append(url)
        return recorder(url)

    rec = Reconciler(None, Settings(prometheus_url=OPERATOR), prometheus_client=factory)  # type: ignore[arg-type]
    assert rec._client(OPERATOR) is rec._client(OPERATOR)
    assert made == [OPERATOR]


def test_observe_without_a_tenant_query_never_fills_or_sends_the_custom_promql() -> None:
    asked: list[str] = []

    def prom(promql: str) -> float:
        asked.append(promql)
        return 0.0 if "failure" in promql else 50.0

    spec = observe.AnalysisSpec.model_validate(
        {"interval": "2s", "window": "10s", "minSamples": 1, "metrics": CUSTOM}
    )
    out = observe.analysis_outcome(spec, namespace="team-a", canary="c", stable="s", query=prom)
    assert not any("refusals" in q for q in asked)
    assert next(m for m in out.metrics if m.name == "refusals").message == tenancy.NO_TENANT_PROXY
