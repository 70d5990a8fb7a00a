"""Which Prometheus one ModelDeployment's analysis may ask, and through what: a pure decision.

Prometheus is the platform's, not the tenant's. Whoever writes a ModelDeployment chooses
``spec.rollout.analysis.prometheusUrl``, so that URL is asked only when the operator's settings
allow it (its own ``prometheus_url`` and ``prometheus_allowed_urls``, exact match); any other
is never contacted, and the analysis is Inconclusive with a reason naming the field and the
chart value. The built-in checks are the operator's own PromQL, which selects the object's
namespace itself, so they go to the chosen URL. A custom ``metrics[].query`` is the tenant's
PromQL: it goes only to the platform's tenant proxy (``prometheus_tenant_url``, prom-label-proxy
run with ``-label namespace`` in front of ``prometheus_url``), which parses it and enforces
``namespace="<the object's namespace>"`` on every selector. Without one, or when the spec names
another Prometheus (whose series the proxy does not front), custom metrics are Inconclusive and
say what the platform must set. No I/O here; :mod:`.reconcile` acts on the :class:`Plan`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The form field prom-label-proxy reads the enforced value from: with `-label namespace` and no
# `-query-param`, the proxy's query parameter is the label's name.
TENANT_PARAM = "namespace"

NO_PROMETHEUS = (
    "no Prometheus to ask: the operator has none (chart value prometheus.url, KUBETUNE_PROMETHEUS_URL)"
)
NOT_ALLOWED = (
    "spec.rollout.analysis.prometheusUrl is not a Prometheus this operator may ask, so it was not "
    "contacted: leave it empty to use the operator's, or ask the platform to list it in the chart "
    "value prometheus.allowedUrls"
)
NO_TENANT_PROXY = (
    "custom queries run only through the platform's tenant proxy, which keeps them to this "
    "namespace; the operator has none (chart value prometheus.tenantProxyUrl, a prom-label-proxy "
    "with -label namespace in front of prometheus.url)"
)
OTHER_PROMETHEUS = (
    "custom queries run only through the platform's tenant proxy in front of prometheus.url, "
    "not against spec.rollout.analysis.prometheusUrl; leave that field empty to run them"
)


def normalise(url: str) -> str:
    """A URL as compared with the allowed ones: surrounding spaces and trailing slashes dropped."""
    return url.strip().rstrip("/")


def allowed(url: str, operator_url: str | None, allowed_urls: Iterable[str]) -> bool:
    """Whether a spec's ``prometheusUrl`` may be asked: it is the operator's own or listed."""
    wanted = normalise(url)
    permitted = {normalise(u) for u in (operator_url, *allowed_urls) if u}
    return bool(wanted) and wanted in permitted


@dataclass(frozen=True)
class Plan:
    """Where one analysis sends its queries, or why it cannot run.

    ``url``: the Prometheus of the built-in checks (None: no analysis, ``problem`` says why).
    ``tenant_url``: the tenant proxy of custom queries (None: ``custom_problem`` says why).
    """

    url: str | None
    tenant_url: str | None = None
    problem: str | None = None
    custom_problem: str | None = None


def plan(
    spec_url: str | None,
    *,
    operator_url: str | None,
    allowed_urls: Iterable[str] = (),
    tenant_url: str | None = None,
) -> Plan:
    """The :class:`Plan` for a spec naming ``spec_url`` (None or empty: the operator's)."""
    if spec_url and normalise(spec_url) and not allowed(spec_url, operator_url, allowed_urls):
        return Plan(None, problem=NOT_ALLOWED)
    url = normalise(spec_url) if spec_url and normalise(spec_url) else operator_url
    if not url:
        return Plan(None, problem=NO_PROMETHEUS)
    if not tenant_url:
        return Plan(url, custom_problem=NO_TENANT_PROXY)
    if operator_url is None or normalise(url) != normalise(operator_url):
        return Plan(url, custom_problem=OTHER_PROMETHEUS)
    return Plan(url, tenant_url=normalise(tenant_url))
