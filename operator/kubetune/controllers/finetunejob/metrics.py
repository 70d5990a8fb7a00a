"""Prometheus metrics of the FineTuneJob controller, on the operator's ``/metrics``.

One private registry (so tests can run several operators in one process without duplicate
series), updated by ``reconcile`` after each decision. Names follow Prometheus conventions
(``_seconds``, ``_total``); per-job series carry ``namespace`` and ``name`` and are dropped when
the job is deleted.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubetune.api.v1alpha1.finetunejob import FineTuneJobStatus

PHASES = ("Pending", "Validating", "Training", "Evaluating", "Exporting", "Succeeded", "Failed", "Suspended")


class Metrics:
    """The operator's series."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs = Gauge("kubetune_finetunejobs", "FineTuneJobs by phase.", ["phase"], registry=r)
        self.reconcile_seconds = Histogram(
            "kubetune_reconcile_duration_seconds",
            "Time of one FineTuneJob reconcile.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.errors = Counter(
            "kubetune_reconcile_errors_total", "Reconciles that raised.", ["kind"], registry=r
        )
        self.progress = Gauge(
            "kubetune_finetunejob_progress_ratio",
            "Steps done over steps planned.",
            ["namespace", "name"],
            registry=r,
        )
        self.gpu_seconds = Gauge(
            "kubetune_finetunejob_gpu_seconds", "GPU-seconds used so far.", ["namespace", "name"], registry=r
        )
        self.cost = Gauge(
            "kubetune_finetunejob_estimated_cost",
            "Estimated cost so far.",
            ["namespace", "name", "currency"],
            registry=r,
        )
        self._phase_of: dict[tuple[str, str], str] = {}
        for phase in PHASES:
            self.jobs.labels(phase).set(0)

    def observe(self, namespace: str, name: str, status: FineTuneJobStatus) -> None:
        key = (namespace, name)
        self._phase_of[key] = status.phase
        self._count()
        progress = status.progress
        if progress is not None and progress.total_steps:
            self.progress.labels(namespace, name).set(progress.step / progress.total_steps)
        if status.cost is not None:
            self.gpu_seconds.labels(namespace, name).set(status.cost.gpu_hours * 3600.0)
            self.cost.labels(namespace, name, status.cost.currency).set(status.cost.amount)

    def forget(self, namespace: str, name: str) -> None:
        self._phase_of.pop((namespace, name), None)
        self._count()
        for gauge in (self.progress, self.gpu_seconds):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)

    def _count(self) -> None:
        counts = dict.fromkeys(PHASES, 0)
        for phase in self._phase_of.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, n in counts.items():
            self.jobs.labels(phase).set(n)
