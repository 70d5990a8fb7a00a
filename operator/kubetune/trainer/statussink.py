"""A progress sink that writes ``status.progress`` of the pod's own FineTuneJob, live.

In a training pod the operator sets ``KUBETUNE_JOB_NAME`` and ``KUBETUNE_NAMESPACE`` and binds
a Role that allows ``get``/``patch`` on ``finetunejobs/<name>/status`` only; this sink sends a
merge patch of ``status.progress`` at most every ``interval`` seconds (and always for the last
step), and ``status.metrics`` from a final ``result`` event when the trainer emits one. It never
fails the run: an API error is logged once and the sink keeps trying at the next interval.
:func:`from_environment` returns None outside a cluster. I/O goes through
:mod:`kubetune.clients.kube`; no training logic here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubetune import logs
from kubetune.api.contract import events, pod
from kubetune.api.contract.events import Event, PhaseEvent, ProgressEvent
from kubetune.api.v1alpha1.base import rfc3339
from kubetune.clients import kube as kubeclient

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 2.0


class StatusSink:
    """Patches ``finetunejobs/<name>/status`` with the latest progress, rate-limited."""

    def __init__(
        self,
        kube: kubeclient.Kube,
        namespace: str,
        name: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.url = kubeclient.path("kubetune.io/v1alpha1", "FineTuneJob", namespace, name, "status")
        self.interval = interval
        self.clock = clock
        self._last_sent: float | None = None
        self._pending: ProgressEvent | None = None
        self._warned = False
        self.patches = 0

    def emit(self, event: Event) -> None:
        if isinstance(event, ProgressEvent):
            self._pending = event
            now = self.clock()
            due = self._last_sent is None or now - self._last_sent >= self.interval
            if due or event.step >= event.total_steps:
                self._flush(now)
            return
        result = events.result_of(event) if isinstance(event, PhaseEvent) else None
        if result is not None and result.metrics:
            self._patch({"metrics": [m.to_wire() for m in result.metrics]})

    def _flush(self, now: float) -> None:
        event, self._pending = self._pending, None
        if event is None:
            return
        self._last_sent = now
        self._patch({"progress": event.to_status(rfc3339(datetime.now(UTC))).to_wire()})

    def _patch(self, status: dict[str, Any]) -> None:
        try:
            self.kube.patch(self.url, {"status": status})
            self.patches += 1
        except kubeclient.ApiError as exc:
            if not self._warned:
                log.warning(
                    "cannot report progress to the FineTuneJob status; continuing without it",
                    extra=logs.fields(error=str(exc), status=exc.status),
                )
                self._warned = True

    def close(self) -> None:
        self._flush(self.clock())


def from_environment(
    env: Mapping[str, str] | None = None, interval: float = DEFAULT_INTERVAL
) -> StatusSink | None:
    """A sink for the pod's own job when its env and in-cluster credentials are there, else None."""
    env = os.environ if env is None else env
    name, namespace = env.get(pod.JOB_NAME), env.get(pod.NAMESPACE)
    if not name or not namespace or not kubeclient.has_credentials(env):
        return None
    try:
        kube = kubeclient.Kube.from_environment()
    except Exception as exc:  # a broken service account mount must not stop training
        log.warning("no in-cluster credentials for status reporting", extra=logs.fields(error=str(exc)))
        return None
    return StatusSink(kube, namespace, name, interval=interval)
