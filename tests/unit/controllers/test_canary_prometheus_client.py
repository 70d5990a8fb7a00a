"""The Prometheus client returns one number per query and maps every outage to one error type."""

from __future__ import annotations

import json
import math
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
        response._content = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
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
    assert sent["url"] == f"{URL}/api/v1/query" and sent["timeout"] == 3
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


def test_connection_refused_is_unreachable_naming_the_url() -> None:
    session = FakeSession(raises=requests.ConnectionError("Connection refused\nsecond line"))
    with pytest.raises(PrometheusUnreachable) as exc:
        client(session).query("x")
    assert URL in str(exc.value) and "\n" not in str(exc.value)


def test_timeout_is_unreachable() -> None:
    with pytest.raises(PrometheusUnreachable, match="did not answer within 3s"):
        client(FakeSession(raises=requests.ReadTimeout())).query("x")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unreachable(status: int) -> None:
    body = {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"}
    with pytest.raises(PrometheusUnreachable, match=f"HTTP {status}: unavailable: TSDB not ready"):
        client(FakeSession(status=status, body=body)).query("x")


def test_a_body_that_is_not_the_api_is_unreachable() -> None:
    with pytest.raises(PrometheusUnreachable, match="not its JSON API"):
        client(FakeSession(body=b"<html>login</html>")).query("x")


def test_rejected_query_is_a_query_error_not_an_outage() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'}
    with pytest.raises(PrometheusQueryError, match="rejected query 'x}': bad_data: parse error"):
        client(FakeSession(status=400, body=body)).query("x}")
