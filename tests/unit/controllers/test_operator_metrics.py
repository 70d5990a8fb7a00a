"""The operator's per-object series: what observe() sets, and that forget() leaves nothing of a
deleted object behind (label cardinality bounded by the live objects)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kubetune.api.v1alpha1.common import MetricComparison
from kubetune.api.v1alpha1.finetunejob import BudgetSpec, CostSummary, FineTuneJobStatus, Progress
from kubetune.api.v1alpha1.modeldeployment import MetricVerdict, ModelDeploymentStatus
from kubetune.controllers.finetunejob.metrics import Metrics
from kubetune.controllers.modeldeployment import metrics as mdep_metrics
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome


def _series(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _mentions(registry: CollectorRegistry, name: str) -> list[str]:
    return [
        s.name
        for family in registry.collect()
        for s in family.samples
        if s.labels.get("name") == name and s.labels.get("namespace") == "team-a"
    ]


def test_a_job_reports_its_phase_progress_throughput_loss_and_budget_share() -> None:
    m = Metrics()
    status = FineTuneJobStatus(
        phase="Training",
        progress=Progress(
            step=5, total_steps=20, loss=1.5, eval_loss=1.7, tokens_per_second=900.0, eta_seconds=30
        ),
        cost=CostSummary(gpu_hours=0.5, amount=1.0, currency="EUR"),
    )
    m.observe("team-a", "j", status, BudgetSpec(max_gpu_hours=2.0, max_cost=1.25))
    r = m.registry
    job = (("name", "j"), ("namespace", "team-a"))
    assert _series(r, "kubetune_finetunejob_phase") == {(*job, ("phase", "Training")): 1.0}
    assert _series(r, "kubetune_finetunejob_progress_ratio") == {job: 0.25}
    assert _series(r, "kubetune_finetunejob_tokens_per_second") == {job: 900.0}
    assert _series(r, "kubetune_finetunejob_eta_seconds") == {job: 30.0}
    assert _series(r, "kubetune_finetunejob_loss") == {
        (*job, ("split", "train")): 1.5,
        (*job, ("split", "eval")): 1.7,
    }
    # cost 1.0 of 1.25 is the larger share (0.8 > 0.25 of the GPU-hours)
    assert _series(r, "kubetune_finetunejob_budget_used_ratio") == {job: 0.8}
    assert _series(r, "kubetune_finetunejob_estimated_cost") == {
        (("currency", "EUR"), ("name", "j"), ("namespace", "team-a")): 1.0
    }


def test_a_job_is_in_one_phase_at_a_time_and_forget_removes_every_series_of_it() -> None:
    m = Metrics()
    m.observe(
        "team-a", "j", FineTuneJobStatus(phase="Training", progress=Progress(step=1, total_steps=2, loss=2.0))
    )
    m.observe(
        "team-a",
        "j",
        FineTuneJobStatus(phase="Succeeded", cost=CostSummary(gpu_hours=1, amount=2)),
        BudgetSpec(max_gpu_hours=4),
    )
    phases = _series(m.registry, "kubetune_finetunejob_phase")
    assert list(phases) == [(("name", "j"), ("namespace", "team-a"), ("phase", "Succeeded"))]
    m.forget("team-a", "j")
    assert _mentions(m.registry, "j") == []
    assert _series(m.registry, "kubetune_finetunejobs")[(("phase", "Succeeded"),)] == 0


def _rollout(phase: str, stable: str | None, canary: str | None, weight: int) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(
        phase=phase,
        stable_revision=stable,
        canary_revision=canary,
        canary_weight=weight,  # type: ignore[arg-type]
    )


def test_a_rollout_reports_weights_per_revision_values_per_side_and_counts_a_rollback_once() -> None:
    m = mdep_metrics.Metrics()
    m.observe("team-a", "d", _rollout("Progressing", "r1", "r2", 20))
    m.analysed(
        "team-a",
        "d",
        AnalysisOutcome(
            verdict="Fail",
            metrics=[MetricVerdict(name="errorRate", verdict="Fail", canary=0.5, stable=0.01)],
        ),
    )
    r = m.registry
    d = (("name", "d"), ("namespace", "team-a"))
    assert _series(r, "kubetune_modeldeployment_revision_weight_percent") == {
        (*d, ("revision", "r1"), ("role", "stable")): 80.0,
        (*d, ("revision", "r2"), ("role", "canary")): 20.0,
    }
    assert _series(r, "kubetune_modeldeployment_analysis_value") == {
        (("check", "errorRate"), *d, ("side", "canary")): 0.5,
        (("check", "errorRate"), *d, ("side", "stable")): 0.01,
    }
    m.observe("team-a", "d", _rollout("RolledBack", "r1", None, 0))
    m.observe("team-a", "d", _rollout("RolledBack", "r1", None, 0))
    assert _series(r, "kubetune_modeldeployment_rollbacks_total") == {d: 1.0}
    assert _series(r, "kubetune_modeldeployment_revision_weight_percent") == {
        (*d, ("revision", "r1"), ("role", "stable")): 100.0
    }
    assert list(_series(r, "kubetune_modeldeployment_phase")) == [(*d, ("phase", "RolledBack"))]


def test_an_unreachable_prometheus_is_its_own_verdict_and_forget_removes_every_series() -> None:
    m = mdep_metrics.Metrics()
    m.observe("team-a", "d", _rollout("Progressing", "r1", "r2", 10))
    m.analysed("team-a", "d", AnalysisOutcome(verdict="Inconclusive", reachable=False))
    overall = _series(m.registry, "kubetune_modeldeployment_analysis_verdicts_total")
    assert (
        overall[(("check", "overall"), ("name", "d"), ("namespace", "team-a"), ("verdict", "Unreachable"))]
        == 1
    )
    m.forget("team-a", "d")
    assert _mentions(m.registry, "d") == []


def test_a_job_evaluated_only_at_the_end_reports_its_evaluation_loss_as_eval() -> None:
    m = Metrics()
    status = FineTuneJobStatus(
        phase="Succeeded",
        progress=Progress(step=10, total_steps=10, loss=0.9),
        metrics=[
            MetricComparison(name="rougeL", tuned=0.4),
            MetricComparison(name="loss", base=2.5, tuned=1.25),
        ],
    )
    m.observe("team-a", "j", status)
    assert _series(m.registry, "kubetune_finetunejob_loss") == {
        (("name", "j"), ("namespace", "team-a"), ("split", "train")): 0.9,
        (("name", "j"), ("namespace", "team-a"), ("split", "eval")): 1.25,
    }


def test_a_jobs_team_label_is_an_info_series_that_follows_relabelling_and_goes_with_the_job() -> None:
    m = Metrics()
    status = FineTuneJobStatus(phase="Training", cost=CostSummary(gpu_hours=2.0, amount=5.0, currency="USD"))
    m.observe("team-a", "bot", status, team="search")
    assert _series(m.registry, "kubetune_finetunejob_info") == {
        (("name", "bot"), ("namespace", "team-a"), ("team", "search")): 1.0
    }
    m.observe("team-a", "bot", status, team="ranking")  # the label was changed
    assert list(_series(m.registry, "kubetune_finetunejob_info")) == [
        (("name", "bot"), ("namespace", "team-a"), ("team", "ranking"))
    ]
    m.forget("team-a", "bot")
    assert _mentions(m.registry, "bot") == []
