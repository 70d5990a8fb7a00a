"""A ModelDeployment cannot make the operator contact a URL the platform did not allow, and what
an allowed URL answers never reaches status or Events beyond its HTTP status.

Before, ``spec.rollout.analysis.prometheusUrl`` made the operator POST to any URL from inside
the cluster and copy up to 200 characters of the answer into status and Events.
"""

from __future__ import annotations

import pytest
from prometheus_helpers import Recorder, analyse, model_deployment

from kubetune.controllers.modeldeployment import tenancy
from kubetune.controllers.modeldeployment.reconcile import Reconciler
from kubetune.controllers.settings import Settings

pytestmark = pytest.mark.timeout(60)


def test_a_prometheus_url_outside_the_allowlist_is_never_contacted() -> None:
    with Recorder() as platform, Recorder() as target:
        reconciler = Reconciler(None, Settings(prometheus_url=platform.url))  # type: ignore[arg-type]
        outcome = analyse(reconciler, model_deployment("tenant", prometheusUrl=target.url + "/api/v1/admin"))
        outcome_same_host = analyse(reconciler, model_deployment("tenant", prometheusUrl=target.url))
        assert target.requests == [] and platform.requests == []
        for o in (outcome, outcome_same_host):
            assert o.verdict == "Inconclusive" and not o.reachable and o.message == tenancy.NOT_ALLOWED

        # the same URL, once the platform lists it, is asked: the test above could fail
        allowed = Reconciler(
            None, Settings(prometheus_url=platform.url, prometheus_allowed_urls=(target.url,))
        )  # type: ignore[arg-type]
        assert analyse(allowed, model_deployment("tenant", prometheusUrl=target.url)).reachable
        assert target.requests and all(path == "/api/v1/query" for path in target.requests)


def test_what_an_allowed_url_answers_stays_out_of_the_outcome() -> None:
    secret = b"<html>internal dashboard: token=s3cr3t-t0ken</html>"
    with Recorder(status=502, body=secret) as broken, Recorder(status=200, body=secret) as html:
        for server, status in ((broken, "HTTP 502"), (html, "not its JSON API")):
            reconciler = Reconciler(None, Settings(prometheus_url=server.url))  # type: ignore[arg-type]
            outcome = analyse(reconciler, model_deployment("tenant"))
            assert server.requests and not outcome.reachable
            assert (
                status in outcome.message
                and "s3cr3t" not in outcome.message
                and "html" not in outcome.message
            )
