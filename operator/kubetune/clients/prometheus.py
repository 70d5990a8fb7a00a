"""HTTP client for the Prometheus query API: one instant query in, one number out.

The canary analysis (:mod:`kubetune.controllers.modeldeployment.observe`) asks questions whose
answer is a single number (a ratio, a quantile, a request count), so :meth:`Client.query`
returns exactly that: a float, NaN when Prometheus computes NaN, or None when the query selects
no series at all. Anything that means "Prometheus could not answer" (connection refused,
timeout, HTTP 5xx, a body that is not the API's JSON) raises :class:`PrometheusUnreachable`,
which the state machine turns into a hold; a query Prometheus rejects, or one that returns more
than one series, raises :class:`PrometheusQueryError`, a mistake in the query rather than an
outage. Messages are one line and name the URL or the query. Knows nothing of canaries.
"""

from __future__ import annotations

import math
from typing import Any

import requests

DEFAULT_TIMEOUT_S = 5.0


class PrometheusError(Exception):
    """Base class of the errors this client raises."""


class PrometheusUnreachable(PrometheusError):
    """Prometheus did not answer (network error, timeout, 5xx, garbage): nothing is known."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered, but the query is wrong for this use (rejected, or several series)."""


class Client:
    """Instant queries against ``<url>/api/v1/query``; one per Prometheus, safe to share."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = session or requests.Session()

    def query(self, promql: str, at: float | None = None) -> float | None:
        """The single value of ``promql`` at ``at`` (Unix seconds; default: Prometheus' now).

        None when the result has no series; NaN/±Inf as Prometheus computed them.
        """
        endpoint = f"{self.url}/api/v1/query"
        params: dict[str, str] = {"query": promql, "timeout": f"{self.timeout_s:g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            response = self._session.post(endpoint, data=params, timeout=self.timeout_s)
        except requests.Timeout:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} did not answer within {self.timeout_s:g}s"
            ) from None
        except requests.RequestException as exc:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} is unreachable: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        body = _json(response)
        if response.status_code >= 500 or (body is None and response.status_code != 200):
            # 503 is also what Prometheus answers while it replays its WAL at start-up
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} answered HTTP {response.status_code}: {_error(body, response)}"
            )
        if body is None:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} answered something that is not its JSON API"
            )
        if body.get("status") != "success":
            raise PrometheusQueryError(
                f"Prometheus at {self.url} rejected query {promql!r}: {_error(body, response)}"
            )
        return _single_value(body.get("data"), promql)


def _single_value(data: Any, promql: str) -> float | None:
    if not isinstance(data, dict):
        raise PrometheusQueryError(f"query {promql!r}: response has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result, promql)
    if kind == "vector":
        if not result:
            return None
        if len(result) > 1:
            labels = ", ".join(str(s.get("metric", {})) for s in result[:3])
            raise PrometheusQueryError(
                f"query {promql!r} returned {len(result)} series, expected one "
                f"(aggregate it, e.g. with sum()): {labels}"
            )
        return _number(result[0].get("value"), promql)
    raise PrometheusQueryError(f"query {promql!r} returned a {kind}, expected an instant vector or scalar")


def _number(sample: Any, promql: str) -> float:
    """Prometheus writes values as strings: "0.5", "NaN", "+Inf"."""
    try:
        value = float(sample[1])
    except (TypeError, IndexError, ValueError):
        raise PrometheusQueryError(f"query {promql!r}: malformed sample {sample!r}") from None
    return math.nan if math.isnan(value) else value


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error(body: dict[str, Any] | None, response: requests.Response) -> str:
    if body and body.get("error"):
        return f"{body.get('errorType', 'error')}: {_first_line(body['error'])}"
    return _first_line(response.text[:200]) or response.reason or "no body"


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""
