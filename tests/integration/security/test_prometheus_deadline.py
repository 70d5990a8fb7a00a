"""A Prometheus URL that answers a byte at a time holds nobody: every query has a total deadline.

requests' read timeout bounds each socket read, so a server that sends one byte every 0.2 s
would keep a query (and the kopf worker running it) forever. Here such a server is real
(127.0.0.1) and the analysis runs through the operator's own code; kopf's executor is stood in
for by a thread pool of two workers, so a stuck worker would show as a delay of the other
namespace's analysis.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import pytest
from prometheus_helpers import Recorder, Trickler, analyse, model_deployment, within

from kubetune.clients import prometheus
from kubetune.controllers.modeldeployment.reconcile import Reconciler
from kubetune.controllers.settings import Settings

pytestmark = pytest.mark.timeout(120)
DEADLINE_S = 1.0


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_a_query_against_a_trickling_server_is_unreachable_at_its_deadline(
    mode: Literal["headers", "body"],
) -> None:
    with Trickler(mode) as slow:
        client = prometheus.Client(slow.url, timeout_s=DEADLINE_S)
        started = time.monotonic()

        def ask() -> str:
            with pytest.raises(prometheus.PrometheusUnreachable) as err:
                client.query("up")
            return str(err.value)

        message = within(15, ask)
        took = time.monotonic() - started
        assert slow.requests == 1
        assert took < DEADLINE_S + 1.0, f"took {took:.1f}s for a {DEADLINE_S}s deadline"
        assert message == f"Prometheus at {slow.url} did not answer within {DEADLINE_S:g}s"


def test_modeldeployments_on_a_slow_prometheus_do_not_delay_another_namespaces_analysis() -> None:
    """Four objects of namespace ``slow-team`` name a (platform-allowed) Prometheus that
    trickles; with two workers taken by them, ``other-team``'s analysis still completes."""
    with Trickler("headers") as slow, Recorder() as healthy:
        settings = Settings(
            prometheus_url=healthy.url, prometheus_allowed_urls=(slow.url,), prometheus_timeout_s=DEADLINE_S
        )
        reconciler = Reconciler(None, settings)  # type: ignore[arg-type]  # analysis needs no API server
        workers = ThreadPoolExecutor(2, thread_name_prefix="kopf-worker")
        try:
            stuck = [
                workers.submit(
                    analyse, reconciler, model_deployment("slow-team", f"bot-{i}", prometheusUrl=slow.url)
                )
                for i in range(4)
            ]
            submitted = time.monotonic()
            other = workers.submit(analyse, reconciler, model_deployment("other-team"))
            outcome = within(20, lambda: other.result(timeout=19))
            waited = time.monotonic() - submitted
            # behind at most the slow objects' deadlines, not behind a server that never ends
            assert waited < 4 * DEADLINE_S + 2.0, f"other-team waited {waited:.1f}s"
            assert outcome.reachable and healthy.requests
            for future in stuck:
                slow_outcome = future.result(timeout=10)
                assert not slow_outcome.reachable and slow.url in slow_outcome.message
        finally:
            workers.shutdown(wait=False, cancel_futures=True)
