"""ModelDeployments with ``engine: vllm`` on the real control plane, running the real vLLM.

The node agent runs the ``vllm/vllm-openai`` image as vLLM's CPU build (hack/setup-vllm.sh);
nothing of vLLM is re-implemented. A deployment serving the base model and two adapters
answers through the real ``openai`` client, each adapter differently and an unknown name with
a 404; an adapter that changes nothing never passes the verifier sidecar (which asks through
``"model": NAME``) and its canary is rolled back; a canary from adapter v1 to v2 is promoted on
vLLM's own metrics scraped by a real Prometheus, and a release that starves vLLM's batch
(``maxNumSeqs: 1`` under concurrent traffic) is rolled back on them. Without vLLM's environment
these tests skip, unless KUBETUNE_REQUIRE_VLLM is set (hack/test.sh sets it).

vLLM's CPU attention needs a head size of 32 or more, so the tiny Llama here has 2 heads of 32
(the other tests' model has 16).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from ftj_helpers import make_claim
from mdep_helpers import (
    MDEP,
    dump,
    make_adapter_dir,
    register_adapter,
    status_of,
)

from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube
from kubetune.testing.nodeagent.config import vllm_env
from kubetune.testing.prometheus import Prometheus, prometheus_available
from kubetune.testing.waiting import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
from traffic import PodTraffic

pytestmark = pytest.mark.timeout(900)

PROMPT = "the support team"
# generous: vLLM takes 30-80 s to start on a loaded 2-core machine, and the verifier waits for it
VERIFY = {"prompt": PROMPT, "maxNewTokens": 8, "timeout": "300s"}
RUNTIME: dict[str, Any] = {"engine": "vllm", "maxModelLen": 128, "args": ["--dtype", "float32"]}


@pytest.fixture(scope="module")
def vllm_installed() -> Path:
    python = vllm_env() / "bin" / "python"
    if not python.exists():
        message = f"vLLM's environment {vllm_env()} is missing; run hack/setup-vllm.sh"
        if os.environ.get("KUBETUNE_REQUIRE_VLLM") == "1":
            pytest.fail(f"{message} (KUBETUNE_REQUIRE_VLLM=1 makes this an error)", pytrace=False)
        pytest.skip(message)
    return python


@pytest.fixture(scope="module")
def vllm_assets(vllm_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama vLLM's CPU attention accepts (head size 32) and three adapters for it."""
    from kubetune.trainer import tiny

    root = tmp_path_factory.mktemp("vllm-assets")
    data = Path(__file__).resolve().parents[3] / "docs" / "examples" / "quickstart" / "train.jsonl"
    (root / "train.jsonl").write_text("\n".join(data.read_text().splitlines()[:48]) + "\n")
    model = tiny.build(
        root / "model", root / "train.jsonl", vocab_size=256, max_positions=128, hidden=64, heads=2
    )
    adapters = root / "adapters"
    make_adapter_dir(model, adapters / "v1", working=True, seed=7)
    make_adapter_dir(model, adapters / "v2", working=True, seed=11)
    make_adapter_dir(model, adapters / "no-op", working=False)
    return root


@pytest.fixture
def vllm_pvc(kube: Kube, namespace: str, vllm_assets: Path) -> Path:
    path = make_claim(kube, namespace, "data")
    shutil.copytree(vllm_assets / "model", path / "model")
    return path


@pytest.fixture
def prometheus(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Prometheus]:
    """A real Prometheus scraping the namespace's kubetune pods (vLLM's /metrics) every second."""
    problem = prometheus_available()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    with Prometheus.for_cluster(tmp_path / "prometheus", cluster.kubeconfig, [namespace]) as prom:
        yield prom


@pytest.fixture
def operator_settings(prometheus: Prometheus, adapter_registry: str) -> Settings:
    """The operator with ``prometheus`` as its analysis backend (overrides the level's)."""
    return Settings(
        insecure_registries=(adapter_registry.removeprefix("oci://"),),
        prometheus_url=prometheus.url,
        default_registry=f"{adapter_registry}/adapters",
    )


def vllm_deployment(adapters: list[dict[str, str]], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "chat"},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "adapters": adapters,
            "replicas": 1,
            "resources": {"gpus": 0, "cpu": "1", "memory": "6Gi"},
            "runtime": RUNTIME,
            "verification": VERIFY,
            "rollout": {"steps": [{"setWeight": 50}, {"setWeight": 100}]},
        },
    }
    body["spec"].update(spec)
    return body


def phase(kube: Kube, namespace: str, *phases: str) -> dict[str, Any] | None:
    st = status_of(kube, namespace, "chat")
    return st if st.get("phase") in phases else None


def ready_pod_ip(kube: Kube, namespace: str, rev: str) -> str | None:
    pods = kube.list(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"kubetune.io/revision={rev}")
    for p in pods:
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
            return str(p["status"]["podIP"])
    return None


def complete(client: openai.OpenAI, model: str) -> str:
    out = client.completions.create(model=model, prompt=PROMPT, max_tokens=8, temperature=0)
    return out.choices[0].text


def test_vllm_serves_base_and_two_adapters_over_the_openai_api_and_a_no_op_adapter_is_rolled_back(
    kube: Kube,
    namespace: str,
    vllm_pvc: Path,
    vllm_assets: Path,
    adapter_registry: str,
    operator: kubetune_operator.Operator,
) -> None:
    adapters = vllm_assets / "adapters"
    register_adapter(kube, namespace, "bot-v1", adapters / "v1", adapter_registry)
    register_adapter(kube, namespace, "helper-v1", adapters / "v2", adapter_registry)
    served = [{"name": "bot", "adapter": "bot-v1"}, {"name": "helper", "adapter": "helper-v1"}]
    kube.create(MDEP.format(ns=namespace), vllm_deployment(served))
    healthy = wait_for(lambda: phase(kube, namespace, "Healthy", "RolledBack"), 420, "chat Healthy on vLLM")
    assert healthy["phase"] == "Healthy", dump(kube, namespace, "chat")
    stable = healthy["stableRevision"]

    ip = wait_for(lambda: ready_pod_ip(kube, namespace, stable), 30, "a ready vLLM pod")
    client = openai.OpenAI(base_url=f"http://{ip}:8080/v1", api_key="unused", max_retries=0, timeout=60)
    assert {m.id for m in client.models.list()} == {"chat", "bot", "helper"}
    base, bot, helper = complete(client, "chat"), complete(client, "bot"), complete(client, "helper")
    assert len({base, bot, helper}) == 3, (base, bot, helper)
    assert complete(client, "bot") == bot  # greedy: the same answer again
    with pytest.raises(openai.NotFoundError):
        complete(client, "nobody")

    # A third adapter that changes nothing: vLLM serves it, the verifier refuses it.
    register_adapter(kube, namespace, "noop-v1", adapters / "no-op", adapter_registry)
    kube.patch(
        MDEP.format(ns=namespace) + "/chat",
        {
            "spec": {
                "adapters": [*served, {"name": "noop", "adapter": "noop-v1"}],
                "verification": {"timeout": "150s"},
            }
        },
    )
    rolled = wait_for(lambda: phase(kube, namespace, "RolledBack"), 420, "no-op canary rolled back")
    last = rolled["history"][-1]
    assert last["action"] == "RolledBack", rolled
    assert "adapter noop answers exactly like the base model" in last["message"], last
    assert rolled["stableRevision"] == stable
    assert complete(client, "bot") == bot  # the stable pod kept serving throughout


ANALYSIS: dict[str, Any] = {
    "interval": "5s",
    "window": "15s",
    "minSamples": 8,
    "failureLimit": 2,
    # a loaded 2-core machine: latency ratios are noisy; queue time under a starved batch is not
    "builtin": {
        "maxP95LatencyRatio": 6.0,
        "maxTimePerTokenRatio": 6.0,
        "maxTimeToFirstTokenRatio": None,
        "maxQueueTimeRatio": 20.0,
    },
}
STEPS = [{"setWeight": 50}, {"analysis": {"intervals": 2}}, {"setWeight": 100}]


def test_a_vllm_canary_is_promoted_and_a_starved_one_rolled_back_on_vllm_metrics_in_prometheus(
    kube: Kube,
    namespace: str,
    vllm_pvc: Path,
    vllm_assets: Path,
    adapter_registry: str,
    prometheus: Prometheus,
    operator: kubetune_operator.Operator,
) -> None:
    adapters = vllm_assets / "adapters"
    register_adapter(kube, namespace, "bot-v1", adapters / "v1", adapter_registry)
    register_adapter(kube, namespace, "bot-v2", adapters / "v2", adapter_registry)
    body = vllm_deployment(
        [{"name": "bot", "adapter": "bot-v1"}], rollout={"steps": STEPS, "analysis": ANALYSIS}
    )
    kube.create(MDEP.format(ns=namespace), body)
    first = wait_for(lambda: phase(kube, namespace, "Healthy"), 420, "chat Healthy on bot-v1")[
        "stableRevision"
    ]

    with PodTraffic(kube, namespace, "chat", adapter="bot", rate=8.0, workers=6, api="openai") as traffic:
        kube.patch(
            MDEP.format(ns=namespace) + "/chat",
            {"spec": {"adapters": [{"name": "bot", "adapter": "bot-v2"}]}},
        )
        canary = wait_for(lambda: status_of(kube, namespace, "chat").get("canaryRevision"), 30, "canary")
        promoted = wait_for(lambda: phase(kube, namespace, "Healthy", "RolledBack"), 600, "canary decided")
        assert promoted["phase"] == "Healthy" and promoted["stableRevision"] == canary, dump(
            kube, namespace, "chat"
        )
        analysis = promoted["analysis"]
        assert analysis["verdict"] == "Pass", analysis
        checks = {m["name"]: m for m in analysis["metrics"]}
        assert set(checks) == {"errorRate", "p95Latency", "timePerToken", "queueTime"}, checks
        assert checks["errorRate"]["samples"] >= ANALYSIS["minSamples"], checks
        assert all(c["verdict"] == "Pass" for c in checks.values()), checks
        counts = traffic.counts()
        assert counts[canary][0] > 0 and counts[first][0] > 0, counts
        # what the checks read is vLLM's own series, by revision
        assert prometheus.series(
            f'vllm:e2e_request_latency_seconds_count{{kubetune_io_revision="{canary}"}} > 0'
        )

        # A release that starves vLLM's batch: one sequence at a time under six concurrent clients.
        runtime = {**RUNTIME, "maxNumSeqs": 1}
        kube.patch(MDEP.format(ns=namespace) + "/chat", {"spec": {"runtime": runtime}})
        starved = wait_for(
            lambda: (r := status_of(kube, namespace, "chat").get("canaryRevision")) != canary and r,
            30,
            "starved canary",
        )
        rolled = wait_for(
            lambda: phase(kube, namespace, "RolledBack", "Healthy"), 600, "starved canary decided"
        )
        assert rolled["phase"] == "RolledBack" and rolled["stableRevision"] == canary, dump(
            kube, namespace, "chat"
        )
        last = rolled["history"][-1]
        assert last["action"] == "RolledBack" and "queueTime" in last["message"], last
        assert traffic.counts()[starved][0] > 0  # it served, slowly: a metrics verdict, not a crash
