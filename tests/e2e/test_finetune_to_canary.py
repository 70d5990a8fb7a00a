"""The whole loop on the local control plane, every part real.

Two LoRA FineTuneJobs train on CPU in pods run by the node agent and push their adapters to a
real registry; the operator registers two Adapters. A ModelDeployment serves the first; pointed
at the second, it starts a canary whose pods pull the digest-pinned adapter, pass the verifier,
take traffic, and are judged by a real Prometheus that found them through the API server; the
analysis passes and the canary is promoted. Then a faulty release (the same adapter on a
runtime failing 60% of requests, injected with the runtime's fault flag) is rolled back by the
error-rate check while the stable pods keep serving.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from ftj_helpers import FTJ, dump, lora_job, phase_is
from mdep_helpers import MDEP, adapter_state, deployments, model_deployment, status_of
from observability import (
    assert_every_panel_returns_data,
    assert_scrape_matches_metrics_doc,
    export_panel_ranges,
)
from traffic import PodTraffic

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(1200)

ANALYSIS: dict[str, Any] = {
    "interval": "4s",
    "window": "12s",
    "minSamples": 10,
    "failureLimit": 2,
    # a loaded 2-core machine: latency ratios are noisy, errors are not
    "builtin": {"maxP95LatencyRatio": 4.0, "maxTimePerTokenRatio": 4.0, "maxQueueTimeRatio": None},
}
STEPS = [{"setWeight": 50}, {"analysis": {"intervals": 2}}, {"setWeight": 100}]


def _train(kube: Kube, namespace: str, registry: str) -> None:
    output = {"repository": f"{registry}/e2e/bot", "insecure": True}
    for name, seed in (("bot-v1", 1), ("bot-v2", 2)):
        job = lora_job(name, output={**output, "tag": name})
        job["spec"]["hyperparameters"].update(learningRate=0.05, seed=seed)
        # two teams, for the per-team GPU-hours and cost panels (the operator's team label)
        job["metadata"]["labels"] = {"kubetune.io/team": "search" if name == "bot-v1" else "ranking"}
        if name == "bot-v1":  # a budget, for the dashboards' and alerts' budget share
            job["spec"]["budget"] = {"maxGpuHours": 100}
        kube.create(FTJ.format(ns=namespace), job)
    for name in ("bot-v1", "bot-v2"):
        obj = wait_for(
            lambda n=name: phase_is(kube, namespace, n, "Succeeded", "Failed"), 420, f"{name} trained"
        )
        assert obj["status"]["phase"] == "Succeeded", dump(obj)
        wait_for(lambda n=name: adapter_state(kube, namespace, n) == "candidate", 30, f"Adapter {name}")


def _phase(kube: Kube, namespace: str, *phases: str) -> dict[str, Any] | None:
    st = status_of(kube, namespace, "bot")
    return st if st.get("phase") in phases else None


def test_finetuned_adapter_is_promoted_on_prometheus_data_and_a_faulty_release_rolled_back(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    adapter_registry: str,
    prometheus: Prometheus,
    operator: kubetune_operator.Operator,
    operator_metrics: kubetune_operator.Probes,
) -> None:
    assert adapter_registry.startswith("oci://"), "needs the docker-registry Debian package"
    started = time.time()
    _train(kube, namespace, adapter_registry)

    body = model_deployment(
        "bot",
        adapters=[{"name": "bot", "adapter": "bot-v1"}],
        rollout={"steps": STEPS, "analysis": ANALYSIS},
    )
    kube.create(MDEP.format(ns=namespace), body)
    first = wait_for(lambda: _phase(kube, namespace, "Healthy"), 180, "bot Healthy on bot-v1")[
        "stableRevision"
    ]
    assert adapter_state(kube, namespace, "bot-v1") == "stable"

    with PodTraffic(kube, namespace, "bot", adapter="bot") as traffic:
        kube.patch(
            MDEP.format(ns=namespace) + "/bot", {"spec": {"adapters": [{"name": "bot", "adapter": "bot-v2"}]}}
        )
        canary = wait_for(lambda: status_of(kube, namespace, "bot").get("canaryRevision"), 30, "canary")
        promoted = wait_for(lambda: _phase(kube, namespace, "Healthy", "RolledBack"), 300, "canary decided")
        assert promoted["phase"] == "Healthy" and promoted["stableRevision"] == canary, promoted
        assert "canaryRevision" not in promoted, promoted
        analysis = promoted["analysis"]
        assert analysis["verdict"] == "Pass", analysis
        actions = [h["action"] for h in promoted["history"]]
        assert actions.count("AnalysisPassed") >= 2 and actions[-1] == "Promoted", actions
        checks = {m["name"]: m for m in analysis["metrics"]}
        assert checks["errorRate"]["samples"] >= ANALYSIS["minSamples"], checks
        assert checks["errorRate"]["verdict"] == "Pass", checks
        counts = traffic.counts()
        assert counts[canary][0] > 0 and counts[first][0] > 0, counts
        assert adapter_state(kube, namespace, "bot-v2") == "stable"
        assert adapter_state(kube, namespace, "bot-v1") == "retired"
        wait_for(lambda: set(deployments(kube, namespace, "bot")) == {canary}, 60, "old revision removed")

        # A faulty release of the same adapter: errors on 60% of requests.
        runtime = {"args": ["--num-threads", "1", "--fault-error-rate", "0.6"], "maxTotalTokens": 64}
        kube.patch(MDEP.format(ns=namespace) + "/bot", {"spec": {"runtime": runtime}})
        faulty = wait_for(
            lambda: (r := status_of(kube, namespace, "bot").get("canaryRevision")) != canary and r,
            30,
            "faulty canary",
        )
        rolled = wait_for(
            lambda: _phase(kube, namespace, "RolledBack", "Healthy"), 300, "faulty canary decided"
        )
        assert rolled["phase"] == "RolledBack" and rolled["stableRevision"] == canary, rolled
        last = rolled["history"][-1]
        assert last["action"] == "RolledBack" and "errorRate" in last["message"], last
        served_before = traffic.counts().get(canary, (0, 0))[0]
        wait_for(
            lambda: traffic.counts().get(canary, (0, 0))[0] > served_before + 10, 30, "stable keeps serving"
        )
        assert traffic.counts()[faulty][1] > 0  # the canary really failed requests

    events = kube.events(namespace, "bot")
    rollback = [e for e in events if e["reason"] == "AnalysisFailed" and "errorRate" in e["message"]]
    assert rollback and all(e["type"] == "Warning" for e in rollback), events
    assert any(e["reason"] == "Promoted" for e in events), events
    up = prometheus.series(f'up{{namespace="{namespace}"}}')
    assert up, "Prometheus discovered no pods"

    # What the platform team sees: the operator's own series, scraped by the same Prometheus.
    assert prometheus.series('up{job="kubetune-operator"} == 1'), "the operator's /metrics was not scraped"
    ns = f'namespace="{namespace}"'
    assert prometheus.series(f'kubetune_finetunejob_phase{{{ns}, name="bot-v1", phase="Succeeded"}} == 1')
    assert prometheus.series(f'kubetune_modeldeployment_phase{{{ns}, name="bot", phase="RolledBack"}} == 1')
    wait_for(
        lambda: prometheus.series(f'kubetune_modeldeployment_rollbacks_total{{{ns}, name="bot"}} == 1'),
        10,
        "the rollback counted once",
    )
    assert_scrape_matches_metrics_doc(prometheus)
    assert_every_panel_returns_data(prometheus, namespace, started)
    if os.environ.get("KUBETUNE_DASHBOARD_DATA"):  # hack/render-dashboard.py draws the README picture
        export_panel_ranges(prometheus, namespace, started, Path(os.environ["KUBETUNE_DASHBOARD_DATA"]))
