"""HTTP client for the Prometheus query API: one instant query in, one number out, in bounded time.

The canary analysis (:mod:`kubetune.controllers.modeldeployment.observe`) asks questions whose
answer is a single number (a ratio, a quantile, a request count), so :meth:`Client.query`
returns exactly that: a float, NaN when Prometheus computes NaN, or None when the query selects
no series at all. Anything that means "Prometheus could not answer" (connection refused, no
answer by the deadline, HTTP 5xx, a body that is not the API's JSON) raises
:class:`PrometheusUnreachable`, which the state machine turns into a hold; a query Prometheus
rejects, or one that returns more than one series, raises :class:`PrometheusQueryError`, a
mistake in the query rather than an outage. :meth:`Client.query_by` is the one exception to
"one number": a histogram's buckets for the statistical judge, one number per ``le``. Knows
nothing of canaries.

Every query has a **total** deadline (``timeout_s``), not only a socket timeout: requests'
read timeout applies to each socket read, so a server trickling a byte at a time would hold the
caller forever. The caller (a reconcile worker) therefore never does the I/O itself: it hands
the query to a daemon thread of this client (at most ``max_in_flight`` at once; one client per
URL, kept across reconciles) and waits until the deadline. The worker reads the body in pieces and
gives up at the deadline too; a server that trickles its *headers* keeps the worker until it
stops (http.client reads headers line by line), but never the caller, and while every worker of
a URL is taken, queries to it fail at once instead of queuing. The number of threads is thus
bounded by the URLs the operator may ask.

Messages are one line: the URL, the HTTP status, Prometheus' ``errorType`` and counts. They go
into status and Events that a namespace's users read, so they never carry a response body, a
Prometheus error text or a label set.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from concurrent import futures
from typing import Any

import requests
from urllib3 import exceptions as urllib3_errors

DEFAULT_TIMEOUT_S = 5.0
# Parallel queries per Prometheus; more wait for nothing: they fail at once (see module doc).
DEFAULT_MAX_IN_FLIGHT = 4
# An instant query for one number answers in well under a kilobyte; a bigger body is not one.
MAX_BODY_BYTES = 1 << 20
_READ_SIZE = 16384


class PrometheusError(Exception):
    """Base class of the errors this client raises."""


class PrometheusUnreachable(PrometheusError):
    """Prometheus did not answer (network error, deadline, 5xx, garbage): nothing is known."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered, but the query is wrong for this use (rejected, or several series)."""


class _Deadline(Exception):
    """The worker passed the query's deadline while reading."""


class Client:
    """Instant queries against ``<url>/api/v1/query``; one per Prometheus, safe to share.

    ``timeout_s`` bounds each query as a whole, from the call to the parsed answer.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: requests.Session | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self._session = session or requests.Session()
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def query(
        self, promql: str, at: float | None = None, *, params: Mapping[str, str] | None = None
    ) -> float | None:
        """The single value of ``promql`` at ``at`` (Unix seconds; default: Prometheus' now).

        None when the result has no series; NaN/±Inf as Prometheus computed them. ``params`` are
        extra form fields (e.g. ``namespace`` for prom-label-proxy).
        """
        status, body = self._ask(promql, at, params)
        return _single_value(_data(self.url, promql, status, body), promql)

    def query_by(
        self, promql: str, label: str, at: float | None = None, *, params: Mapping[str, str] | None = None
    ) -> dict[str, float]:
        """Every series of ``promql`` at ``at``, keyed by the value of ``label``.

        For answers with one series per label value, e.g. ``sum by (le) (...)`` for a histogram's
        buckets. Empty when no series; a series without ``label``, or two with the same value, is
        a :class:`PrometheusQueryError`.
        """
        status, body = self._ask(promql, at, params)
        return _by_label(_data(self.url, promql, status, body), promql, label)

    def _ask(
        self, promql: str, at: float | None, params: Mapping[str, str] | None
    ) -> tuple[int, dict[str, Any] | None]:
        form: dict[str, str] = {"query": promql, "timeout": f"{self.timeout_s:g}s"}
        if at is not None:
            form["time"] = f"{at:.3f}"
        form.update(params or {})
        deadline = time.monotonic() + self.timeout_s
        if not self._slots.acquire(blocking=False):
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} is still busy with {self.max_in_flight} earlier queries "
                f"that did not answer; not asking it more"
            )
        future: futures.Future[tuple[int, dict[str, Any] | None]] = futures.Future()
        # A daemon thread per query, at most max_in_flight at once: one stuck in a server that
        # never finishes must not keep the operator from exiting either (a pool's threads would).
        worker = threading.Thread(
            target=self._post, args=(form, deadline, future), name="prometheus-query", daemon=True
        )
        try:
            worker.start()
        except BaseException:
            self._slots.release()
            raise
        try:
            status, body = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except futures.TimeoutError:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} did not answer within {self.timeout_s:g}s"
            ) from None
        return status, body

    def close(self) -> None:
        """Close idle connections; workers still reading finish on their own."""
        self._session.close()

    # --- in a worker thread -----------------------------------------------------------------

    def _post(
        self, form: dict[str, str], deadline: float, future: futures.Future[tuple[int, dict[str, Any] | None]]
    ) -> None:
        try:
            future.set_result(self._exchange(form, deadline))
        except BaseException as exc:
            future.set_exception(exc)
        finally:
            self._slots.release()

    def _exchange(self, form: dict[str, str], deadline: float) -> tuple[int, dict[str, Any] | None]:
        endpoint = f"{self.url}/api/v1/query"
        socket_timeout = max(0.1, deadline - time.monotonic())
        try:
            response = self._session.post(
                endpoint,
                data=form,
                timeout=socket_timeout,
                stream=True,
                headers={"Accept-Encoding": "identity", "Accept": "application/json"},
                allow_redirects=False,
            )
            try:
                raw = _read_body(response, deadline)
            finally:
                response.close()
        except (requests.Timeout, _Deadline):
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} did not answer within {self.timeout_s:g}s"
            ) from None
        except requests.RequestException as exc:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} is unreachable ({type(exc).__name__})"
            ) from None
        return response.status_code, _json(raw)


def _read_body(response: requests.Response, deadline: float) -> bytes | None:
    """The body, read in pieces until the deadline; None when it is larger than MAX_BODY_BYTES."""
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise _Deadline()
        try:
            chunk = read(_READ_SIZE)
        except urllib3_errors.ReadTimeoutError:
            raise _Deadline() from None
        except (urllib3_errors.HTTPError, OSError) as exc:
            raise requests.ConnectionError(type(exc).__name__) from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)


def _data(url: str, promql: str, status: int, body: dict[str, Any] | None) -> Any:
    if status >= 500 or (body is None and status != 200):
        # 503 is also what Prometheus answers while it replays its WAL at start-up
        raise PrometheusUnreachable(f"Prometheus at {url} answered HTTP {status}{_error_type(body)}")
    if body is None:
        raise PrometheusUnreachable(f"Prometheus at {url} answered something that is not its JSON API")
    if body.get("status") != "success":
        raise PrometheusQueryError(
            f"Prometheus at {url} rejected query {_short(promql)} (HTTP {status}{_error_type(body)})"
        )
    return body.get("data")


def _by_label(data: Any, promql: str, label: str) -> dict[str, float]:
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise PrometheusQueryError(f"query {_short(promql)}: expected an instant vector")
    result = data.get("result")
    if not isinstance(result, list):
        raise PrometheusQueryError(f"query {_short(promql)}: malformed result")
    out: dict[str, float] = {}
    for series in result:
        metric = series.get("metric") if isinstance(series, dict) else None
        key = metric.get(label) if isinstance(metric, dict) else None
        if not isinstance(key, str) or key in out:
            raise PrometheusQueryError(
                f"query {_short(promql)}: expected one series per value of label {label}"
            )
        out[key] = _number(series.get("value"), promql)
    return out


def _single_value(data: Any, promql: str) -> float | None:
    if not isinstance(data, dict):
        raise PrometheusQueryError(f"query {_short(promql)}: response has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result, promql)
    if kind == "vector":
        if not result:
            return None
        if not isinstance(result, list) or not isinstance(result[0], dict):
            raise PrometheusQueryError(f"query {_short(promql)}: malformed result")
        if len(result) > 1:
            raise PrometheusQueryError(
                f"query {_short(promql)} returned {len(result)} series, expected one "
                f"(aggregate it, e.g. with sum())"
            )
        return _number(result[0].get("value"), promql)
    kind_name = kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 20 else "result"
    raise PrometheusQueryError(
        f"query {_short(promql)} returned a {kind_name}, expected an instant vector or scalar"
    )


def _number(sample: Any, promql: str) -> float:
    """Prometheus writes values as strings: "0.5", "NaN", "+Inf"."""
    try:
        value = float(sample[1])
    except (TypeError, IndexError, KeyError, ValueError):
        raise PrometheusQueryError(f"query {_short(promql)}: malformed sample") from None
    return math.nan if math.isnan(value) else value


def _json(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_type(body: dict[str, Any] | None) -> str:
    """``: <errorType>`` when it is one of Prometheus' short identifiers, else nothing."""
    kind = (body or {}).get("errorType")
    if isinstance(kind, str) and 0 < len(kind) <= 32 and kind.replace("_", "").replace("-", "").isalnum():
        return f": {kind}"
    return ""


def _short(promql: str, limit: int = 160) -> str:
    """The query as written in messages: one line, at most ``limit`` characters."""
    flat = " ".join(promql.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
