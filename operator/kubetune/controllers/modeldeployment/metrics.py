"""Prometheus series of the ModelDeployment controller, on the operator's ``/metrics``.

Registered into the operator's registry next to the FineTuneJob series: the canary weight and
phase of each ModelDeployment, and a counter of analysis verdicts per check, so a platform team
can alert on rollbacks and see which check decides them. Per-object series are dropped when the
ModelDeployment is deleted.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubetune.api.v1alpha1.modeldeployment import ModelDeploymentStatus, Phase
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome

PHASES: tuple[Phase, ...] = (
    "Pending",
    "Progressing",
    "Paused",
    "Healthy",
    "Degraded",
    "RolledBack",
    "Failed",
)


class Metrics:
    """The controller's series, in ``registry`` (shared with the rest of the operator)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.deployments = Gauge(
            "kubetune_modeldeployments", "ModelDeployments by phase.", ["phase"], registry=r
        )
        self.canary_weight = Gauge(
            "kubetune_modeldeployment_canary_weight_percent",
            "Percent of traffic sent to the canary revision.",
            ["namespace", "name"],
            registry=r,
        )
        self.verdicts = Counter(
            "kubetune_modeldeployment_analysis_verdicts_total",
            "Canary analysis verdicts per check (check=overall for the whole analysis).",
            ["namespace", "name", "check", "verdict"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "kubetune_modeldeployment_reconcile_duration_seconds",
            "Time of one ModelDeployment reconcile, Prometheus queries included.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.errors = Counter(
            "kubetune_modeldeployment_reconcile_errors_total",
            "ModelDeployment reconciles that raised.",
            ["kind"],
            registry=r,
        )
        self._phase_of: dict[tuple[str, str], str] = {}
        self._count()

    def observe(self, namespace: str, name: str, status: ModelDeploymentStatus) -> None:
        self._phase_of[(namespace, name)] = status.phase
        self._count()
        self.canary_weight.labels(namespace, name).set(status.canary_weight)

    def analysed(self, namespace: str, name: str, outcome: AnalysisOutcome) -> None:
        verdict = outcome.verdict if outcome.reachable else "Unreachable"
        self.verdicts.labels(namespace, name, "overall", verdict).inc()
        for m in outcome.metrics:
            self.verdicts.labels(namespace, name, m.name, m.verdict).inc()

    def forget(self, namespace: str, name: str) -> None:
        self._phase_of.pop((namespace, name), None)
        self._count()
        with contextlib.suppress(KeyError):
            self.canary_weight.remove(namespace, name)

    def _count(self) -> None:
        counts: dict[str, int] = dict.fromkeys(PHASES, 0)
        for phase in self._phase_of.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, n in counts.items():
            self.deployments.labels(phase).set(n)
