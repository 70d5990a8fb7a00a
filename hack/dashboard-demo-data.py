#!/usr/bin/env python3
"""Panel data for the README's dashboard pictures without a cluster: a scripted timeline.

The operator's own metrics code (the FineTuneJob and ModelDeployment ``Metrics`` classes and the
``/metrics`` server of ``kubetune operator run``) is driven through a scripted story, about
90 seconds of wall-clock time: three FineTuneJobs in two namespaces train (one fails), and a
ModelDeployment promotes one canary and rolls a faulty one back. A real Prometheus (the Debian
package) scrapes it every second; every panel query is then read back over the run and written
as JSON for ``hack/render-dashboards.py``. The statuses are scripted, not trained: the e2e test
writes the same file from the whole real loop with KUBETUNE_DASHBOARD_DATA.

    .venv/bin/python hack/dashboard-demo-data.py /tmp/dashboard-demo.json
    .venv/bin/python hack/render-dashboards.py /tmp/dashboard-demo.json
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from kubetune.api.v1alpha1.common import MetricComparison
from kubetune.api.v1alpha1.finetunejob import BudgetSpec, CostSummary, FineTuneJobStatus, Progress
from kubetune.api.v1alpha1.modeldeployment import MetricVerdict, ModelDeploymentStatus
from kubetune.controllers import operator
from kubetune.controllers.finetunejob.metrics import Metrics
from kubetune.controllers.modeldeployment import metrics as mdep_metrics
from kubetune.controllers.modeldeployment.canary import AnalysisOutcome
from kubetune.testing import dashboards
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.servers import LOOPBACK, free_port

SECONDS = 90
JOBS = {  # (namespace, name): start, end, steps, GPUs, fails
    ("ml-team", "chat-v1"): (0, 40, 600, 4, False),
    ("ml-team", "chat-v2"): (22, 78, 800, 4, False),
    ("research", "summarizer"): (8, 34, 500, 2, True),
}
REVISIONS = ("7c9e1f2a", "b41d07e5", "e2a95c13")


def job_status(
    t: float, start: float, end: float, steps: int, gpus: int, fails: bool
) -> FineTuneJobStatus | None:
    if t < start:
        return None
    share = min(1.0, (t - start) / (end - start))
    if fails and share > 0.55:
        share = 0.55
    step = int(steps * share)
    loss = 2.4 * math.exp(-3.0 * share) + 0.35 + random.uniform(-0.05, 0.05)
    hours = gpus * (min(t, end) - start) * 40 / 3600  # 40 minutes of GPU time per demo second
    cost = CostSummary(gpu_hours=round(hours, 4), amount=round(hours * 2.5, 2), currency="USD")
    progress = Progress(
        step=step,
        total_steps=steps,
        loss=round(loss, 4),
        tokens_per_second=round(gpus * 2100 * (1 + random.uniform(-0.08, 0.08)), 1),
        eta_seconds=round(max(0.0, (1 - share) * (end - start) * 40), 1),
        eval_loss=round(loss + 0.12, 4) if step and step % 100 < steps * 0.05 else None,
    )
    if fails and share >= 0.55 and t > start + (end - start) * 0.6:
        return FineTuneJobStatus(phase="Failed", progress=progress, cost=cost)
    if share < 1.0:
        return FineTuneJobStatus(phase="Training", progress=progress, cost=cost)
    if t < end + 4:
        return FineTuneJobStatus(phase="Evaluating", progress=progress, cost=cost)
    tuned = MetricComparison(name="loss", base=2.75, tuned=round(loss + 0.1, 4))
    return FineTuneJobStatus(phase="Succeeded", progress=progress, cost=cost, metrics=[tuned])


def rollout(t: float) -> tuple[ModelDeploymentStatus, AnalysisOutcome | None]:
    a, b, c = REVISIONS
    noise = random.uniform(0.9, 1.1)
    if t < 42:
        return ModelDeploymentStatus(phase="Healthy", stable_revision=a), None
    if t < 66:  # canary b: 10%, then 50%, analyses pass, promoted
        weight = 10 if t < 54 else 50
        checks = [
            MetricVerdict(name="errorRate", verdict="Pass", canary=0.004 * noise, stable=0.005),
            MetricVerdict(name="p95Latency", verdict="Pass", canary=0.82 * noise, stable=0.9),
        ]
        status = ModelDeploymentStatus(
            phase="Progressing", stable_revision=a, canary_revision=b, canary_weight=weight
        )
        return status, AnalysisOutcome(verdict="Pass", metrics=checks)
    if t < 72:
        return ModelDeploymentStatus(phase="Healthy", stable_revision=b), None
    if t < 80:  # a faulty canary c: errors, rolled back
        checks = [
            MetricVerdict(name="errorRate", verdict="Fail", canary=0.31 * noise, stable=0.004),
            MetricVerdict(name="p95Latency", verdict="Pass", canary=0.95 * noise, stable=0.85),
        ]
        status = ModelDeploymentStatus(
            phase="Progressing", stable_revision=b, canary_revision=c, canary_weight=10
        )
        return status, AnalysisOutcome(verdict="Fail", metrics=checks)
    return ModelDeploymentStatus(phase="RolledBack", stable_revision=b), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSON for hack/render-dashboards.py")
    args = parser.parse_args(argv)
    random.seed(18)
    metrics = Metrics()
    deployments = mdep_metrics.Metrics(metrics.registry)
    leader = operator.leader_gauge(metrics.registry)

    class Served:  # what operator.Probes reads: the registry behind /metrics
        pass

    served = Served()
    served.metrics = metrics  # type: ignore[attr-defined]
    port = free_port()
    probes = operator.Probes(served, (LOOPBACK, port))  # type: ignore[arg-type]
    probes.start()
    probes.ready.set()
    budget = BudgetSpec(max_gpu_hours=2.8)
    with (
        tempfile.TemporaryDirectory() as workdir,
        Prometheus(Path(workdir), operator_targets=[f"{LOOPBACK}:{port}"]) as prometheus,
    ):
        start = time.time()
        while (t := time.time() - start) < SECONDS:
            for (namespace, name), (begin, end, steps, gpus, fails) in JOBS.items():
                with metrics.reconcile_seconds.time():
                    status = job_status(t, begin, end, steps, gpus, fails)
                    time.sleep(random.uniform(0.002, 0.02))
                if status is not None:
                    metrics.observe(namespace, name, status, budget if name == "chat-v2" else None)
            with deployments.reconcile_seconds.time():
                status, outcome = rollout(t)
                time.sleep(random.uniform(0.01, 0.06))
            deployments.observe("ml-team", "chat", status)
            if outcome is not None and int(t * 2) % 4 == 0:
                deployments.analysed("ml-team", "chat", outcome)
            leader.set(1)
            time.sleep(0.5)
        time.sleep(2)  # a last scrape
        dashboards.export_ranges(
            prometheus.url,
            ".*",
            start,
            time.time(),
            args.out,
            step=1.0,
            source="a scripted timeline through the operator's metrics code (hack/dashboard-demo-data.py)",
        )
    probes.stop()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
