"""Prometheus metrics of the FineTuneJob controller, on the operator's ``/metrics``.

One private registry (so tests can run several operators in one process without duplicate
series), updated by ``reconcile`` after each decision. Names follow Prometheus conventions
(``_seconds``, ``_total``); per-job series carry ``namespace`` and ``name`` and are dropped when
the job is deleted, so their number is bounded by the live FineTuneJobs. ``docs/metrics.md``
lists every series; a unit test keeps it in step with the registries.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubetune.api.v1alpha1.finetunejob import BudgetSpec, FineTuneJobStatus

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
        self.phase = Gauge(
            "kubetune_finetunejob_phase",
            "1 for the phase each FineTuneJob is in (one series per job).",
            ["namespace", "name", "phase"],
            registry=r,
        )
        self.progress = Gauge(
            "kubetune_finetunejob_progress_ratio",
            "Steps done over steps planned.",
            ["namespace", "name"],
            registry=r,
        )
        self.eta = Gauge(
            "kubetune_finetunejob_eta_seconds",
            "Seconds of training left, as the trainer estimates them.",
            ["namespace", "name"],
            registry=r,
        )
        self.tokens_per_second = Gauge(
            "kubetune_finetunejob_tokens_per_second",
            "Training throughput the trainer last reported.",
            ["namespace", "name"],
            registry=r,
        )
        self.loss = Gauge(
            "kubetune_finetunejob_loss",
            "Latest loss: split=train as the trainer reports it, split=eval on held-out data "
            "(during training, else the tuned model's evaluation).",
            ["namespace", "name", "split"],
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
        self.budget_used = Gauge(
            "kubetune_finetunejob_budget_used_ratio",
            "Share of spec.budget used: the larger of GPU-hours over maxGpuHours and cost over "
            "maxCost (only jobs with a budget).",
            ["namespace", "name"],
            registry=r,
        )
        self.info = Gauge(
            "kubetune_finetunejob_info",
            "Always 1; carries the job's team (the value of the operator's team label on the "
            "FineTuneJob, KUBETUNE_TEAM_LABEL) for joins, e.g. GPU-hours per team.",
            ["namespace", "name", "team"],
            registry=r,
        )
        self._phase_of: dict[tuple[str, str], str] = {}
        self._currency_of: dict[tuple[str, str], str] = {}
        self._team_of: dict[tuple[str, str], str] = {}
        for phase in PHASES:
            self.jobs.labels(phase).set(0)

    def observe(
        self,
        namespace: str,
        name: str,
        status: FineTuneJobStatus,
        budget: BudgetSpec | None = None,
        team: str = "",
    ) -> None:
        key = (namespace, name)
        if self._team_of.get(key, team) != team:
            with contextlib.suppress(KeyError):
                self.info.remove(namespace, name, self._team_of[key])
        self._team_of[key] = team
        self.info.labels(namespace, name, team).set(1)
        before = self._phase_of.get(key)
        if before is not None and before != status.phase:
            with contextlib.suppress(KeyError):
                self.phase.remove(namespace, name, before)
        self._phase_of[key] = status.phase
        self.phase.labels(namespace, name, status.phase).set(1)
        self._count()
        progress = status.progress
        if progress is not None:
            if progress.total_steps:
                self.progress.labels(namespace, name).set(progress.step / progress.total_steps)
            if progress.eta_seconds is not None:
                self.eta.labels(namespace, name).set(progress.eta_seconds)
            if progress.tokens_per_second is not None:
                self.tokens_per_second.labels(namespace, name).set(progress.tokens_per_second)
            if progress.loss is not None:
                self.loss.labels(namespace, name, "train").set(progress.loss)
        # Held-out loss: the trainer's while it evaluates during training, else the evaluation's
        # loss of the tuned model (status.metrics), which is all a job evaluated only at the end has.
        eval_loss = progress.eval_loss if progress is not None else None
        if eval_loss is None:
            eval_loss = next((m.tuned for m in status.metrics if m.name == "loss"), None)
        if eval_loss is not None:
            self.loss.labels(namespace, name, "eval").set(eval_loss)
        if status.cost is not None:
            self.gpu_seconds.labels(namespace, name).set(status.cost.gpu_hours * 3600.0)
            currency = self._currency_of.get(key)
            if currency is not None and currency != status.cost.currency:
                with contextlib.suppress(KeyError):
                    self.cost.remove(namespace, name, currency)
            self._currency_of[key] = status.cost.currency
            self.cost.labels(namespace, name, status.cost.currency).set(status.cost.amount)
            shares = []
            if budget is not None and budget.max_gpu_hours:
                shares.append(status.cost.gpu_hours / budget.max_gpu_hours)
            if budget is not None and budget.max_cost:
                shares.append(status.cost.amount / budget.max_cost)
            if shares:
                self.budget_used.labels(namespace, name).set(max(shares))

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        phase = self._phase_of.pop(key, None)
        self._count()
        if phase is not None:
            with contextlib.suppress(KeyError):
                self.phase.remove(namespace, name, phase)
        team = self._team_of.pop(key, None)
        if team is not None:
            with contextlib.suppress(KeyError):
                self.info.remove(namespace, name, team)
        currency = self._currency_of.pop(key, None)
        if currency is not None:
            with contextlib.suppress(KeyError):
                self.cost.remove(namespace, name, currency)
        for split in ("train", "eval"):
            with contextlib.suppress(KeyError):
                self.loss.remove(namespace, name, split)
        for gauge in (self.progress, self.eta, self.tokens_per_second, self.gpu_seconds, self.budget_used):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)

    def _count(self) -> None:
        counts = dict.fromkeys(PHASES, 0)
        for phase in self._phase_of.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, n in counts.items():
            self.jobs.labels(phase).set(n)
