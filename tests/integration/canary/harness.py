"""Canary level harness: real ``kubetune serve`` processes, a real Prometheus, a traffic splitter.

Everything the controller would have in a cluster, minus Kubernetes:

- :class:`kubetune.testing.prometheus.Prometheus` (file_sd mode) scrapes the servers every
  second; :func:`label` gives each target the labels Kubernetes SD relabelling would give a pod:
  ``namespace`` and ``kubetune_io_revision`` (what :func:`analysis.builtin_queries` selects on).
  The servers are :mod:`kubetune.testing.servers` processes.
- :class:`Traffic` sends bounded, loopback-only ``/generate`` requests at a fixed rate from a
  background thread, ``weight`` percent of them to the canary server, and counts the answers.
- :func:`run_rollout` is the controller's loop without the controller: ``canary.analysis_due``
  (and ``canary.experiment_due``, an A/B experiment's closing analysis over its duration) ->
  ``observe.analysis_outcome`` against Prometheus -> ``canary.advance``, on the real clock,
  until promotion, rollback or a deadline; the traffic follows the weight it decides. Custom
  metrics go through ``tenant_url`` (a real prom-label-proxy) with the ``namespace`` form field,
  as the reconciler sends them; without one they are Inconclusive, as in the operator.

Shared by ``conftest.py`` and ``benchmarks/canary/bench.py``; it never talks to anything but
127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from kubetune.api.v1alpha1.modeldeployment import AnalysisStatus, ModelDeploymentStatus, RolloutSpec
from kubetune.clients.prometheus import Client
from kubetune.controllers.modeldeployment import canary, observe, tenancy
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.servers import Server


def label(server: Server, namespace: str, revision: str) -> dict[str, dict[str, str]]:
    """file_sd entry for a pod of ``revision`` in ``namespace``, as Kubernetes SD relabelling makes it."""
    return {server.address: {"namespace": namespace, "kubetune_io_revision": revision}}


# --- traffic -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Counts:
    ok: int = 0
    failed: int = 0


class Traffic:
    """``rate`` requests/s, ``weight`` % to the canary (deterministic split), at most ``limit`` in all."""

    def __init__(
        self, stable: Server, canary_server: Server, rate: float = 20.0, limit: int = 20_000, workers: int = 8
    ) -> None:
        self.servers = {"stable": stable, "canary": canary_server}
        self.rate = rate
        self.limit = limit
        self.weight = 0
        self.sent = 0
        self.skipped = 0  # ticks dropped because every worker was busy (bounds concurrency)
        self.counts = {"stable": Counts(), "canary": Counts()}
        self.first_canary_failure: float | None = None  # time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="traffic")
        self._slots = threading.Semaphore(workers)
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._http = requests.Session()

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def snapshot(self) -> dict[str, Counts]:
        with self._lock:
            return {k: dataclasses.replace(v) for k, v in self.counts.items()}

    def _run(self) -> None:
        credit = 0.0
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set() and self.sent < self.limit:
            credit += self.weight / 100.0
            target = "stable"
            if credit >= 1.0:
                credit -= 1.0
                target = "canary"
            if self._slots.acquire(blocking=False):
                self.sent += 1
                self._pool.submit(self._send, target)
            else:
                self.skipped += 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, target: str) -> None:
        try:
            server = self.servers[target]
            body = {"inputs": "the support team", "parameters": {"max_new_tokens": 4, "do_sample": False}}
            try:
                ok = self._http.post(f"{server.url}/generate", json=body, timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            with self._lock:
                c = self.counts[target]
                if ok:
                    c.ok += 1
                else:
                    c.failed += 1
                    if target == "canary" and self.first_canary_failure is None:
                        self.first_canary_failure = time.monotonic()
        finally:
            self._slots.release()


# --- the controller's loop -----------------------------------------------------------------------


@dataclasses.dataclass
class Analysis:
    at: float  # seconds since the rollout started
    outcome: canary.AnalysisOutcome
    weight: int
    closing: bool = False  # an A/B experiment's closing analysis (over its duration)


@dataclasses.dataclass
class Rollout:
    """What a run did: every analysis, the final status, when it ended."""

    status: ModelDeploymentStatus
    analyses: list[Analysis] = dataclasses.field(default_factory=list)
    events: list[canary.Event] = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.monotonic)
    ended: float | None = None
    end_counts: dict[str, Counts] = dataclasses.field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.status.phase == "Healthy" and self.status.canary_revision is None

    @property
    def rolled_back(self) -> bool:
        return self.status.phase == "RolledBack"

    def actions(self) -> list[str]:
        return [h.action for h in self.status.history]

    def describe(self) -> str:
        lines = [
            f"phase {self.status.phase}, weight {self.status.canary_weight}, step {self.status.current_step}"
        ]
        for a in self.analyses:
            o = a.outcome
            checks = "; ".join(
                f"{m.name}={m.verdict} c={m.canary} s={m.stable} n={m.samples}/{m.stable_samples} {m.message}"
                for m in o.metrics
            )
            lines.append(
                f"  t={a.at:5.1f}s w={a.weight:3d}{' closing' if a.closing else ''} {o.verdict} reachable={o.reachable} {o.message} | {checks}"
            )
        lines += [f"  event {e.reason}: {e.message}" for e in self.events]
        return "\n".join(lines)


def run_rollout(
    rollout: RolloutSpec,
    *,
    prom: Prometheus,
    traffic: Traffic,
    namespace: str,
    stable: str,
    canary_rev: str,
    deadline_s: float,
    tick_s: float = 0.25,
    on_tick: Callable[[Rollout], bool] | None = None,
    tenant_url: str | None = None,
) -> Rollout:
    """Reconcile every ``tick_s`` like the controller would, until promoted, rolled back, deadline
    or ``on_tick`` returns True. Traffic follows the decided canary weight. An experiment's
    closing analysis is recorded in ``run.analyses`` too, with ``closing=True``."""
    client = prom.client()
    tenant = Client(tenant_url, timeout_s=2.0) if tenant_url is not None else None
    run = Rollout(ModelDeploymentStatus(phase="Healthy", stable_revision=stable, analysis=AnalysisStatus()))
    deadline = run.started + deadline_s

    def analyse(now: datetime, window: str | None = None) -> canary.AnalysisOutcome:
        spec = rollout.analysis if window is None else rollout.analysis.model_copy(update={"window": window})
        at = now.timestamp()
        tenant_query = None
        if tenant is not None:
            tenant_query = functools.partial(tenant.query, at=at, params={tenancy.TENANT_PARAM: namespace})
        outcome = observe.analysis_outcome(
            spec,
            namespace=namespace,
            canary=canary_rev,
            stable=stable,
            query=functools.partial(client.query, at=at),
            buckets_query=functools.partial(client.query_by, label="le", at=at),
            tenant_query=tenant_query,
        )
        elapsed = time.monotonic() - run.started
        run.analyses.append(Analysis(elapsed, outcome, run.status.canary_weight, closing=window is not None))
        return outcome

    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        outcome = analyse(now) if canary.analysis_due(rollout, run.status, now) else None
        window = canary.experiment_due(rollout, run.status, now)
        closing = analyse(now, window) if window is not None else None
        decision = canary.advance(
            rollout,
            run.status,
            canary.Observed(desired_revision=canary_rev, canary_ready=True),
            now,
            outcome,
            experiment=closing,
        )
        run.status = decision.status
        run.events += decision.events
        live = run.status.canary_revision is not None and run.status.phase in ("Progressing", "Paused")
        traffic.weight = run.status.canary_weight if live else 0
        if run.promoted:
            traffic.weight = 100  # the canary is the stable revision now
        if run.promoted or run.rolled_back or (on_tick is not None and on_tick(run)):
            break
        time.sleep(tick_s)
    run.ended = time.monotonic()
    run.end_counts = traffic.snapshot()
    return run
