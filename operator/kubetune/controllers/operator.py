"""The operator process: kopf with kubetune's settings, probes, /metrics and leader election.

:func:`build` assembles one operator (kopf registry and settings, the Kubernetes client, the
FineTuneJob and ModelDeployment reconcilers and their metrics) without starting anything, so tests can hand the
registry to ``kopf.testing.KopfRunner``. :func:`run` is what ``kubetune operator run`` calls:
JSON logs, an HTTP server for ``/healthz``, ``/readyz`` and ``/metrics``, an optional
``coordination.k8s.io`` Lease so that of two replicas only one reconciles, then kopf's loop; and,
in every replica, the admission webhook (:mod:`kubetune.controllers.admission.webhook`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kopf
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from kubetune import logs
from kubetune.clients import kube as kubeclient
from kubetune.controllers.admission import webhook as admission
from kubetune.controllers.finetunejob import handlers
from kubetune.controllers.finetunejob.metrics import Metrics
from kubetune.controllers.finetunejob.reconcile import Reconciler
from kubetune.controllers.modeldeployment import handlers as mdep_handlers
from kubetune.controllers.modeldeployment import metrics as mdep_metrics
from kubetune.controllers.modeldeployment import reconcile as mdep_reconcile
from kubetune.controllers.settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Operator:
    """Everything one operator instance needs; nothing started yet."""

    registry: kopf.OperatorRegistry
    kopf_settings: kopf.OperatorSettings
    reconciler: Reconciler
    metrics: Metrics
    settings: Settings
    deployments: mdep_reconcile.Reconciler
    # 1 while this process reconciles: always without leader election, else while it holds
    # the Lease (a standby serves /metrics with 0, so "no leader" is max() == 0 over replicas).
    leader: Gauge


def leader_gauge(registry: CollectorRegistry) -> Gauge:
    """``kubetune_operator_leader``, at 1 until leader election says this replica waits."""
    leader = Gauge(
        "kubetune_operator_leader",
        "1 while this operator process reconciles (holds the leader Lease, or runs without "
        "leader election), else 0.",
        registry=registry,
    )
    leader.set(1)
    return leader


def build(
    settings: Settings, kube: kubeclient.Kube | None = None, *, resync_seconds: float = 2.0
) -> Operator:
    """Registry, kopf settings and reconcilers (FineTuneJob, ModelDeployment) for one operator."""
    metrics = Metrics()
    leader = leader_gauge(metrics.registry)
    client = kube or kubeclient.Kube.from_environment()
    reconciler = Reconciler(client, settings, metrics)
    deployments = mdep_reconcile.Reconciler(client, settings, mdep_metrics.Metrics(metrics.registry))
    registry = kopf.OperatorRegistry()
    handlers.register(registry, reconciler, resync_seconds=resync_seconds)
    mdep_handlers.register(registry, deployments, resync_seconds=resync_seconds)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A private registry does not get kopf's default login handlers. In-cluster credentials
        # first, else $KUBECONFIG read at login time (not at import, as the official client does).
        if kubeclient.has_credentials():
            return kopf.login_with_service_account(**kwargs)
        return kopf.login_with_kubeconfig(**kwargs)

    cfg = kopf.OperatorSettings()
    # Progress and diff-base in annotations only: status belongs to the API models.
    cfg.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubetune.io")
    cfg.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kubetune.io", key="last-handled-configuration"
    )
    cfg.persistence.finalizer = "kubetune.io/finalizer"
    cfg.posting.level = logging.WARNING  # our own Events tell the story; kopf adds only problems
    cfg.posting.reporting_component = "kubetune-operator"
    cfg.execution.max_workers = int(os.environ.get("KUBETUNE_OPERATOR_WORKERS", "16"))
    cfg.watching.server_timeout = 300
    cfg.networking.request_timeout = 60
    return Operator(
        registry=registry,
        kopf_settings=cfg,
        reconciler=reconciler,
        metrics=metrics,
        settings=settings,
        deployments=deployments,
        leader=leader,
    )


# --- probes and metrics -----------------------------------------------------------------------


class Probes:
    """``/healthz`` (the process serves), ``/readyz`` (watching, and leader when electing), ``/metrics``."""

    def __init__(self, op: Operator, address: tuple[str, int]) -> None:
        self.ready = threading.Event()
        probes = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, ctype, code = generate_latest(op.metrics.registry), CONTENT_TYPE_LATEST, 200
                elif path == "/healthz":
                    body, ctype, code = b"ok\n", "text/plain", 200
                elif path == "/readyz":
                    ok = probes.ready.is_set()
                    body, ctype, code = (
                        (b"ready\n" if ok else b"not ready\n"),
                        "text/plain",
                        200 if ok else 503,
                    )
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(address, Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="kubetune-probes", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- leader election ----------------------------------------------------------------------------


class LeaseElection:
    """A ``coordination.k8s.io/v1`` Lease: acquire before reconciling, renew while running.

    The timings are client-go's (``leaderelection.LeaderElectionConfig``): another replica may
    take the Lease ``duration`` seconds after its last renewal, so the holder stops believing
    it leads ``renew_deadline`` seconds (shorter) after its last successful renewal, whether
    the renewal failed, hung, or the process was paused; two replicas therefore never lead at
    once (up to clock rate skew, as in client-go). It tries every ``retry_period`` seconds.
    Losing the lease sets ``lost``; the caller stops the operator and exits, as client-go does.
    """

    def __init__(
        self,
        kube: kubeclient.Kube,
        namespace: str,
        name: str,
        identity: str,
        duration: float = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < renew_deadline < duration:
            raise ValueError(
                f"the lease renew deadline ({renew_deadline}s) must be shorter than the lease duration "
                f"({duration}s), or two replicas could lead at once; client-go uses 10s and 15s"
            )
        if not 0 < retry_period < renew_deadline:
            raise ValueError(
                f"the lease retry period ({retry_period}s) must be shorter than the renew deadline "
                f"({renew_deadline}s); client-go uses 2s and 10s"
            )
        self.kube = kube
        self.url = kubeclient.path("coordination.k8s.io/v1", "Lease", namespace, name)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.duration, self.renew_deadline, self.retry_period = duration, renew_deadline, retry_period
        self.clock = clock
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renewed_at: float | None = None  # clock() before the last successful acquire/renew

    @staticmethod
    def _stamp(now: datetime) -> str:
        return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def leading(self) -> bool:
        """Whether this replica may act as leader now: renewed less than renew_deadline ago."""
        renewed = self._renewed_at
        return not self.lost.is_set() and renewed is not None and self.clock() - renewed < self.renew_deadline

    def try_acquire(self) -> bool:
        # Taken before the request: the others count the lease from a renewTime no earlier.
        started = self.clock()
        now = datetime.now(UTC)
        lease = self.kube.get(self.url)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.duration)),
            "renewTime": self._stamp(now),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": self._stamp(now)},
            }
            return self._held(self.kube.create(body) is not None, started)
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        renewed = current.get("renewTime")
        expired = True
        if renewed:
            last = datetime.strptime(renewed.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
            expired = now - last > timedelta(
                seconds=int(current.get("leaseDurationSeconds") or self.duration)
            )
        if holder not in (None, "", self.identity) and not expired:
            return False
        if holder != self.identity:
            spec["acquireTime"] = self._stamp(now)
        body = {"metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]}, "spec": spec}
        try:
            return self._held(self.kube.patch(self.url, body) is not None, started)
        except kubeclient.ApiError as exc:
            if exc.status == 409:  # someone else renewed in between
                return False
            raise

    def _held(self, ok: bool, started: float) -> bool:
        if ok:
            self._renewed_at = started
        return ok

    def acquire(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                if self.try_acquire():
                    log.info(
                        "leader lease acquired", extra=logs.fields(lease=self.name, identity=self.identity)
                    )
                    return True
            except kubeclient.ApiError as exc:
                log.warning("lease not acquired", extra=logs.fields(error=str(exc)))
            stop.wait(self.retry_period)
        return False

    def renew_forever(self) -> None:
        """Renew every retry_period; give up (``lost``) when renew_deadline passes without one."""
        while not self._stop.wait(self.retry_period):
            if not self.leading():
                self._give_up("leader lease not renewed within the renew deadline; stopping")
                return
            try:
                if self.try_acquire():
                    continue
                self._give_up("leader lease taken by another replica; stopping")
                return
            except kubeclient.ApiError as exc:
                log.warning("lease renewal failed", extra=logs.fields(error=str(exc)))

    def watch_deadline(self) -> None:
        """Set ``lost`` at the renew deadline even while a renewal hangs or the process was paused."""
        while not self._stop.wait(min(self.retry_period, self.renew_deadline) / 4):
            if self.lost.is_set():
                return
            if not self.leading():
                self._give_up("leader lease not renewed within the renew deadline; stopping")
                return

    def start(self) -> None:
        """Renew and watch the deadline in background threads (after :meth:`acquire`)."""
        threading.Thread(target=self.renew_forever, name="kubetune-lease", daemon=True).start()
        threading.Thread(target=self.watch_deadline, name="kubetune-lease-deadline", daemon=True).start()

    def _give_up(self, message: str) -> None:
        if not self.lost.is_set():
            log.error(message, extra=logs.fields(lease=self.name, identity=self.identity))
        self.lost.set()

    def release(self) -> None:
        self._stop.set()


# --- run ---------------------------------------------------------------------------------------------


def run(
    settings: Settings,
    *,
    namespaces: Sequence[str] = (),
    metrics_address: tuple[str, int] = ("0.0.0.0", 8080),
    leader_election: bool = False,
    lease_namespace: str | None = None,
    lease_name: str = "kubetune-operator",
    lease_duration: float = 15,
    renew_deadline: float = 10,
    retry_period: float = 2,
    resync_seconds: float = 2.0,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
    json_logs: bool = True,
    webhook: admission.Options | None = None,
) -> int:
    """Run the operator until ``stop_flag`` is set, SIGTERM, or the lease is lost; exit code.

    With ``webhook``, every replica serves the admission webhook from the start, leader or not.
    """
    if json_logs:
        logs.setup()
    op = build(settings, resync_seconds=resync_seconds)
    probes = Probes(op, metrics_address)
    probes.start()
    stop = stop_flag or threading.Event()
    election: LeaseElection | None = None
    server = admission.Webhook(op.reconciler.kube, settings, webhook).start() if webhook else None
    try:
        if leader_election:
            identity = f"{socket.gethostname()}-{os.getpid()}"
            ns = lease_namespace or os.environ.get("POD_NAMESPACE") or "default"
            election = LeaseElection(
                op.reconciler.kube,
                ns,
                lease_name,
                identity,
                duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
            )
            op.leader.set(0)
            if not election.acquire(stop):
                return 0
            op.leader.set(1)
            election.start()
            threading.Thread(target=_stop_when, args=(election.lost, stop), daemon=True).start()
        kopf_ready = threading.Event()
        threading.Thread(target=_mark_ready, args=(kopf_ready, probes, ready_flag), daemon=True).start()
        log.info(
            "kubetune operator starting",
            extra=logs.fields(namespaces=list(namespaces) or "all", metrics_port=probes.port),
        )
        loop = asyncio.new_event_loop()
        try:
            kopf.run(
                loop=loop,
                registry=op.registry,
                settings=op.kopf_settings,
                standalone=True,
                clusterwide=not namespaces,
                namespaces=list(namespaces),
                stop_flag=stop,
                ready_flag=kopf_ready,
            )
        finally:
            loop.close()
        return 1 if election is not None and election.lost.is_set() else 0
    finally:
        if election is not None:
            election.release()
        if server is not None:
            server.stop()
        probes.stop()


def _stop_when(flag: threading.Event, stop: threading.Event) -> None:
    flag.wait()
    stop.set()


def _mark_ready(kopf_ready: threading.Event, probes: Probes, ready_flag: threading.Event | None) -> None:
    kopf_ready.wait()
    probes.ready.set()
    if ready_flag is not None:
        ready_flag.set()
