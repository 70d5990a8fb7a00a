"""The Prometheus client returns one number per query and maps every outage to one error type.

Its messages reach status and Events that a namespace's users read: HTTP status, Prometheus'
errorType and counts, never a response body, an error text or a label set.
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
from typing import Any

import pytest
import requests

from kubetune.clients import prometheus
from kubetune.clients.prometheus import PrometheusQueryError, PrometheusUnreachable

URL = "http://prometheus.monitoring:9090"


class FakeSession(requests.Session):
    """Answers every POST with a canned response (or raises); records what was sent."""

    def __init__(self, status: int = 200, body: Any = None, raises: Exception | None = None) -> None:
        super().__init__()
        self.status, self.body, self.raises = status, body, raises
        self.sent: list[dict[str, Any]] = []

    def post(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append({"url": url, "data": data, **kwargs})
        if self.raises is not None:
            raise self.raises
        response = requests.Response()
        response.status_code = self.status
        content = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        response.raw = io.BytesIO(content)  # read as a stream, like urllib3's response
        return response


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [1.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def client(session: FakeSession) -> prometheus.Client:
    return prometheus.Client(URL + "/", timeout_s=3, session=session)


def test_single_series_value_is_a_float_and_the_query_goes_to_the_query_endpoint() -> None:
    session = FakeSession(body=vector("0.25"))
    assert client(session).query("sum(rate(x[1m]))", at=1700000000.5) == 0.25
    sent = session.sent[0]
    assert sent["url"] == f"{URL}/api/v1/query" and 0 < sent["timeout"] <= 3 and sent["stream"]
    assert sent["data"]["query"] == "sum(rate(x[1m]))" and sent["data"]["time"] == "1700000000.500"


def test_no_series_is_none_and_nan_stays_nan() -> None:
    assert client(FakeSession(body=vector())).query("x") is None
    assert math.isnan(client(FakeSession(body=vector("NaN"))).query("x") or 0.0)
    assert client(FakeSession(body=vector("+Inf"))).query("x") == math.inf


def test_scalar_results_are_accepted() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
    assert client(FakeSession(body=body)).query("1+2") == 3.0


def test_more_than_one_series_is_an_error_naming_the_query() -> None:
    with pytest.raises(PrometheusQueryError, match=r"'rate\(x\[1m\]\)' returned 2 series, expected one"):
        client(FakeSession(body=vector("1", "2"))).query("rate(x[1m])")


def test_connection_refused_is_unreachable_naming_the_url_only() -> None:
    session = FakeSession(raises=requests.ConnectionError("Connection refused\nsecond line"))
    with pytest.raises(PrometheusUnreachable) as exc:
        client(session).query("x")
    assert str(exc.value) == f"Prometheus at {URL} is unreachable (ConnectionError)"


def test_timeout_is_unreachable() -> None:
    with pytest.raises(PrometheusUnreachable, match="did not answer within 3s"):
        client(FakeSession(raises=requests.ReadTimeout())).query("x")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unreachable_with_status_and_error_type_only(status: int) -> None:
    body = {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"}
    with pytest.raises(PrometheusUnreachable) as exc:
        client(FakeSession(status=status, body=body)).query("x")
    assert str(exc.value) == f"Prometheus at {URL} answered HTTP {status}: unavailable"


def test_a_body_that_is_not_the_api_is_unreachable_and_not_quoted() -> None:
    with pytest.raises(PrometheusUnreachable) as exc:
        client(FakeSession(body=b"<html>secret-token=abc</html>")).query("x")
    assert "not its JSON API" in str(exc.value) and "secret" not in str(exc.value)


def test_a_non_json_error_page_is_never_quoted() -> None:
    """Any URL answering anything: what it said must not reach the tenant's status."""
    with pytest.raises(PrometheusUnreachable) as exc:
        client(FakeSession(status=403, body=b"internal admin page: password=hunter2")).query("x")
    assert str(exc.value) == f"Prometheus at {URL} answered HTTP 403"


def test_rejected_query_is_a_query_error_with_status_and_error_type_not_the_error_text() -> None:
    body = {
        "status": "error",
        "errorType": "bad_data",
        "error": 'parse error: unexpected "}" near {a="secret"}',
    }
    with pytest.raises(PrometheusQueryError) as exc:
        client(FakeSession(status=400, body=body)).query("x}")
    assert str(exc.value) == f"Prometheus at {URL} rejected query 'x}}' (HTTP 400: bad_data)"


def test_an_error_type_that_is_not_an_identifier_is_left_out() -> None:
    body = {"status": "error", "errorType": "<html> the body of some other server", "error": "x"}
    with pytest.raises(PrometheusQueryError) as exc:
        client(FakeSession(status=422, body=body)).query("x")
    assert str(exc.value).endswith("(HTTP 422)")


def test_several_series_are_counted_never_listed() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"namespace": "other", "pod": f"secret-{i}"}, "value": [1, "1"]} for i in range(5)
            ],
        },
    }
    with pytest.raises(PrometheusQueryError) as exc:
        client(FakeSession(body=body)).query("x")
    assert "returned 5 series" in str(exc.value)
    assert "secret" not in str(exc.value) and "other" not in str(exc.value)


def test_a_body_larger_than_the_cap_is_not_parsed() -> None:
    big = b'{"status": "success", "pad": "' + b"x" * (prometheus.MAX_BODY_BYTES + 1) + b'"}'
    with pytest.raises(PrometheusUnreachable, match="not its JSON API"):
        client(FakeSession(body=big)).query("x")


def test_extra_form_fields_reach_prometheus_with_the_query() -> None:
    session = FakeSession(body=vector("1"))
    client(session).query("x", params={"namespace": "team-a"})
    assert session.sent[0]["data"]["namespace"] == "team-a" and session.sent[0]["data"]["query"] == "x"


def test_a_query_that_blocks_returns_unreachable_at_the_total_deadline() -> None:
    """A session stuck inside one call (e.g. a server trickling its headers) is abandoned by the
    caller at the deadline; while it stays stuck, the client's workers are busy and further
    queries fail at once rather than queue."""
    release = threading.Event()

    class Stuck(FakeSession):
        def post(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            release.wait(30)
            return super().post(url, data, **kwargs)

    c = prometheus.Client(URL, timeout_s=0.3, session=Stuck(body=vector("1")), max_in_flight=1)
    try:
        started = time.monotonic()
        with pytest.raises(PrometheusUnreachable, match=r"did not answer within 0\.3s"):
            c.query("x")
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        with pytest.raises(PrometheusUnreachable, match="still busy with 1 earlier queries"):
            c.query("x")
        assert time.monotonic() - started < 0.1
    finally:
        release.set()
        c.close()


def test_prom_label_proxy_refusals_keep_its_error_type() -> None:
    body = {
        "status": "error",
        "errorType": "prom-label-proxy",
        "error": 'conflicting label matcher: "namespace=b"',
    }
    with pytest.raises(PrometheusQueryError) as exc:
        client(FakeSession(status=400, body=body)).query("x")
    assert str(exc.value).endswith("(HTTP 400: prom-label-proxy)") and "conflicting" not in str(exc.value)


def buckets(*pairs: tuple[str, str]) -> dict[str, Any]:
    result = [{"metric": {"le": le}, "value": [1.0, v]} for le, v in pairs]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_query_by_returns_every_series_keyed_by_the_label() -> None:
    session = FakeSession(body=buckets(("0.1", "3"), ("+Inf", "7")))
    assert client(session).query_by("sum by (le) (x_bucket)", "le", at=1.0) == {"0.1": 3.0, "+Inf": 7.0}
    assert session.sent[0]["data"]["query"] == "sum by (le) (x_bucket)"
    assert client(FakeSession(body=buckets())).query_by("q", "le") == {}


def test_query_by_refuses_series_without_the_label_or_with_it_twice_naming_only_the_label() -> None:
    with pytest.raises(PrometheusQueryError, match="one series per value of label le") as missing:
        client(FakeSession(body=vector("1"))).query_by("q", "le")
    assert "p0" not in str(missing.value)  # never a label set
    with pytest.raises(PrometheusQueryError, match="label le"):
        client(FakeSession(body=buckets(("1", "1"), ("1", "2")))).query_by("q", "le")


def test_query_by_maps_outages_to_unreachable_like_query() -> None:
    with pytest.raises(PrometheusUnreachable):
        client(FakeSession(status=503, body={"status": "error"})).query_by("q", "le")
