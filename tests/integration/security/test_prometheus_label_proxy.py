"""A custom query that names another namespace's series gets no data of it.

A real Prometheus scrapes two small /metrics servers labelled ``namespace=team-a`` and
``namespace=team-b`` (as a cluster Prometheus labels pods); the real prom-label-proxy runs in
front of it the way the platform runs it for kubetune (``-label namespace``); the operator's
settings name both. A ModelDeployment of ``team-a`` then runs custom queries through the
operator's analysis code path. Prometheus itself, asked directly, does hold team-b's series, so
the test would see a leak.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_helpers import analyse, model_deployment

from kubetune.controllers.modeldeployment.reconcile import Reconciler
from kubetune.controllers.settings import Settings
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.promlabelproxy import PromLabelProxy
from kubetune.testing.servers import LOOPBACK

pytestmark = pytest.mark.timeout(120)

# what each namespace's pods export; team-b's values must never reach team-a
EXPORTS = {
    "team-a": "tenant_value 7\n",
    "team-b": "tenant_value 1000\nteam_b_secret_total 4242\n",
}


class MetricsServer:
    """``GET /metrics`` answering fixed text on 127.0.0.1."""

    def __init__(self, text: str) -> None:
        body = text.encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.address = f"{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def scraped(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    servers = {ns: MetricsServer(text) for ns, text in EXPORTS.items()}
    try:
        with Prometheus(tmp_path_factory.mktemp("prometheus"), binary=prometheus_binary) as prom:
            prom.set_targets({s.address: {"namespace": ns} for ns, s in servers.items()})
            for ns in servers:
                prom.wait_scraped(ns, 1)
            yield prom
    finally:
        for s in servers.values():
            s.close()


CUSTOM = [
    # names team-b outright
    {"name": "otherSecret", "query": 'sum(team_b_secret_total{namespace="team-b"})', "threshold": {"max": 1}},
    # any namespace at all, by regex or by leaving the label out
    {"name": "anyNamespace", "query": 'sum(tenant_value{namespace=~".+"})', "threshold": {"max": 1}},
    {"name": "noMatcher", "query": "sum(tenant_value)", "threshold": {"max": 1}},
    {"name": "byName", "query": 'count({__name__=~"team_b_.+|tenant_value"})', "threshold": {"max": 5}},
    # the documented placeholder: its own namespace, which works
    {"name": "own", "query": 'sum(tenant_value{namespace="{{namespace}}"})', "threshold": {"max": 10}},
]


@pytest.mark.parametrize("proxy_flags", [(), ("-error-on-replace",)], ids=["replace", "error-on-replace"])
def test_a_custom_query_for_another_namespaces_series_gets_no_data_of_it(
    scraped: Prometheus, prom_label_proxy_binary: str, tmp_path: Path, proxy_flags: tuple[str, ...]
) -> None:
    # Prometheus itself has team-b's series: asked without the proxy, the queries would leak
    assert scraped.client().query('sum(team_b_secret_total{namespace="team-b"})') == 4242
    assert scraped.client().query("sum(tenant_value)") == 1007

    with PromLabelProxy(prom_label_proxy_binary, scraped.url, tmp_path, proxy_flags) as proxy:
        settings = Settings(prometheus_url=scraped.url, prometheus_tenant_url=proxy.url)
        reconciler = Reconciler(None, settings)  # type: ignore[arg-type]
        outcome = analyse(reconciler, model_deployment("team-a", metrics=CUSTOM))

    values: dict[str, Any] = {m.name: m.canary for m in outcome.metrics}
    messages = {m.name: m.message for m in outcome.metrics}
    assert outcome.reachable, outcome.message
    leaked = {name: v for name, v in values.items() if v in (4242, 1000, 1007, 2, 3)}
    assert not leaked, f"team-b's data reached team-a: {leaked}"
    assert values["otherSecret"] is None
    assert values["own"] == 7
    if proxy_flags:
        # the conflicting matcher is refused by the proxy; the check says so in one line
        # (the query is the tenant's own text; the proxy's error text is not repeated)
        assert messages["otherSecret"].endswith("(HTTP 400: prom-label-proxy)"), messages["otherSecret"]
        assert values["anyNamespace"] == 7
    else:
        # namespace="team-b" is replaced by namespace="team-a": nothing of team-b
        assert values["anyNamespace"] == 7
    assert values["noMatcher"] == 7 and values["byName"] == 1
    assert not any(isinstance(v, float) and math.isnan(v) for v in values.values() if v is not None)
