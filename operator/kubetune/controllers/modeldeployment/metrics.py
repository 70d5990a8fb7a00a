"""Prometheus series of the ModelDeployment controller, on the operator's ``/metrics``.

Registered into the operator's registry next to the FineTuneJob series: the canary weight and
phase of each ModelDeployment, and a counter of analysis verdicts per check, so a platform team
can alert on rollbacks and see which check decides them, the weight of each live revision, and
each check's latest canary and stable values. Per-object series are dropped when the
ModelDeployment is deleted, so their number is bounded by the live objects (revision labels by
the two revisions each one serves at most).
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
        self.phase = Gauge(
            "kubetune_modeldeployment_phase",
            "1 for the phase each ModelDeployment is in (one series per object).",
            ["namespace", "name", "phase"],
            registry=r,
        )
        self.revision_weight = Gauge(
            "kubetune_modeldeployment_revision_weight_percent",
            "Percent of traffic each serving revision receives (role=stable or canary).",
            ["namespace", "name", "revision", "role"],
            registry=r,
        )
        self.analysis_value = Gauge(
            "kubetune_modeldeployment_analysis_value",
            "Latest value of each analysis check, for the canary and the stable revision (side).",
            ["namespace", "name", "check", "side"],
            registry=r,
        )
        self.rollbacks = Counter(
            "kubetune_modeldeployment_rollbacks_total",
            "Rollouts that ended rolled back.",
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
        # Label values set per object, so that forget() and changes remove exactly those.
        self._weights_of: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._checks_of: dict[tuple[str, str], set[str]] = {}
        self._verdicts_of: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._rolled_back: set[tuple[str, str]] = set()
        self._count()

    def observe(self, namespace: str, name: str, status: ModelDeploymentStatus) -> None:
        key = (namespace, name)
        before = self._phase_of.get(key)
        if before is not None and before != status.phase:
            with contextlib.suppress(KeyError):
                self.phase.remove(namespace, name, before)
        self._phase_of[key] = status.phase
        self.phase.labels(namespace, name, status.phase).set(1)
        self._count()
        self.canary_weight.labels(namespace, name).set(status.canary_weight)
        weights: dict[tuple[str, str], float] = {}
        if status.stable_revision:
            share = 100 - status.canary_weight if status.canary_revision else 100
            weights[(status.stable_revision, "stable")] = share
        if status.canary_revision:
            weights[(status.canary_revision, "canary")] = status.canary_weight
        for revision, role in self._weights_of.get(key, set()) - set(weights):
            with contextlib.suppress(KeyError):
                self.revision_weight.remove(namespace, name, revision, role)
        for (revision, role), weight in weights.items():
            self.revision_weight.labels(namespace, name, revision, role).set(weight)
        self._weights_of[key] = set(weights)
        # Count a rollback once, when the object enters RolledBack (a restarted operator that
        # finds it already rolled back counts it again: a counter reset, which rate() absorbs).
        if status.phase == "RolledBack" and key not in self._rolled_back:
            self._rolled_back.add(key)
            self.rollbacks.labels(namespace, name).inc()
        elif status.phase != "RolledBack":
            self._rolled_back.discard(key)
            self.rollbacks.labels(namespace, name)  # the series exists (at 0) before the first

    def analysed(self, namespace: str, name: str, outcome: AnalysisOutcome) -> None:
        key = (namespace, name)
        verdict = outcome.verdict if outcome.reachable else "Unreachable"
        seen = self._verdicts_of.setdefault(key, set())
        self.verdicts.labels(namespace, name, "overall", verdict).inc()
        seen.add(("overall", verdict))
        checks = self._checks_of.setdefault(key, set())
        for m in outcome.metrics:
            self.verdicts.labels(namespace, name, m.name, m.verdict).inc()
            seen.add((m.name, m.verdict))
            for side, value in (("canary", m.canary), ("stable", m.stable)):
                if value is None:
                    with contextlib.suppress(KeyError):
                        self.analysis_value.remove(namespace, name, m.name, side)
                else:
                    self.analysis_value.labels(namespace, name, m.name, side).set(value)
            checks.add(m.name)

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        phase = self._phase_of.pop(key, None)
        self._count()
        with contextlib.suppress(KeyError):
            self.canary_weight.remove(namespace, name)
        if phase is not None:
            with contextlib.suppress(KeyError):
                self.phase.remove(namespace, name, phase)
        for revision, role in self._weights_of.pop(key, set()):
            with contextlib.suppress(KeyError):
                self.revision_weight.remove(namespace, name, revision, role)
        for check in self._checks_of.pop(key, set()):
            for side in ("canary", "stable"):
                with contextlib.suppress(KeyError):
                    self.analysis_value.remove(namespace, name, check, side)
        for check, verdict in self._verdicts_of.pop(key, set()):
            with contextlib.suppress(KeyError):
                self.verdicts.remove(namespace, name, check, verdict)
        self._rolled_back.discard(key)
        with contextlib.suppress(KeyError):
            self.rollbacks.remove(namespace, name)

    def _count(self) -> None:
        counts: dict[str, int] = dict.fromkeys(PHASES, 0)
        for phase in self._phase_of.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, n in counts.items():
            self.deployments.labels(phase).set(n)
