"""ModelDeployments on the real control plane: TGI pods run by the node agent, a real registry.

A new adapter goes through the canary to stable and the old revision is removed; an adapter
that answers like the base model never passes the verifier and is rolled back while the stable
pods keep serving; an analysis step with no Prometheus holds until a manual promote, or until
its progress deadline rolls it back; a promotion from a last step below 100% keeps the old
stable until the new one has all its pods available. The Prometheus-judged canary is the
end-to-end level's (tests/e2e).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mdep_helpers import (
    MDEP,
    adapter_state,
    deployments,
    dump,
    generate,
    get_mdep,
    make_adapter_dir,
    model_deployment,
    register_adapter,
    status_of,
)

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="session")
def adapter_dirs(tiny_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {
        "working": make_adapter_dir(tiny_assets / "model", root / "working", working=True),
        "no-op": make_adapter_dir(tiny_assets / "model", root / "no-op", working=False),
    }


@pytest.fixture
def stable_base(
    kube: Kube, namespace: str, data_pvc: Path, operator: kubetune_operator.Operator
) -> Iterator[str]:
    """ModelDeployment ``bot`` serving the base model alone, Healthy; yields its stable revision."""
    kube.create(MDEP.format(ns=namespace), model_deployment("bot"))

    def healthy() -> str | None:
        st = status_of(kube, namespace, "bot")
        return st.get("stableRevision") if st.get("phase") == "Healthy" else None

    rev = wait_for(healthy, 150, "bot Healthy on the base model")
    yield rev


def _ready_pod_ip(kube: Kube, namespace: str, rev: str) -> str | None:
    pods = kube.list(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"kubetune.io/revision={rev}")
    for p in pods:
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
            return str(p["status"]["podIP"])
    return None


def test_new_adapter_goes_through_the_canary_and_becomes_stable(
    kube: Kube, namespace: str, stable_base: str, adapter_dirs: dict[str, Path], adapter_registry: str
) -> None:
    assert adapter_registry.startswith("oci://"), "needs the docker-registry Debian package"
    status = status_of(kube, namespace, "bot")
    assert {c["type"]: c["status"] for c in status["conditions"]}["Available"] == "True", dump(
        kube, namespace, "bot"
    )
    register_adapter(kube, namespace, "bot-v1", adapter_dirs["working"], adapter_registry)
    kube.patch(
        MDEP.format(ns=namespace) + "/bot", {"spec": {"adapters": [{"name": "bot", "adapter": "bot-v1"}]}}
    )

    canary = wait_for(
        lambda: status_of(kube, namespace, "bot").get("canaryRevision"), 30, "a canary revision"
    )
    assert canary != stable_base
    wait_for(lambda: adapter_state(kube, namespace, "bot-v1") == "canary", 30, "Adapter bot-v1 canary")

    def promoted() -> bool:
        st = status_of(kube, namespace, "bot")
        assert st.get("phase") != "RolledBack", dump(kube, namespace, "bot")
        return st.get("phase") == "Healthy" and st.get("stableRevision") == canary

    wait_for(promoted, 240, "canary promoted")
    status = status_of(kube, namespace, "bot")
    assert "canaryRevision" not in status and status["canaryWeight"] == 0, status
    actions = [h["action"] for h in status["history"]]
    assert actions[-4:] == ["CanaryStarted", "SetWeight", "SetWeight", "Promoted"], actions
    assert adapter_state(kube, namespace, "bot-v1") == "stable"
    wait_for(lambda: set(deployments(kube, namespace, "bot")) == {canary}, 60, "old revision removed")
    reasons = {e["reason"] for e in kube.events(namespace, "bot")}
    assert {"CanaryStarted", "WeightSet", "Promoted"} <= reasons, reasons
    ip = wait_for(lambda: _ready_pod_ip(kube, namespace, canary), 30, "a ready pod of the new stable")
    tuned = generate(ip, "the support team", adapter="bot")["generated_text"]
    base = generate(ip, "the support team")["generated_text"]
    assert tuned != base


def test_adapter_answering_like_the_base_model_is_rolled_back_and_stable_keeps_serving(
    kube: Kube, namespace: str, stable_base: str, adapter_dirs: dict[str, Path], adapter_registry: str
) -> None:
    assert adapter_registry.startswith("oci://"), "needs the docker-registry Debian package"
    register_adapter(kube, namespace, "bot-broken", adapter_dirs["no-op"], adapter_registry)
    kube.patch(
        MDEP.format(ns=namespace) + "/bot",
        {
            "spec": {
                "adapters": [{"name": "bot", "adapter": "bot-broken"}],
                "verification": {"timeout": "20s"},
            }
        },
    )

    def rolled_back() -> dict[str, object] | None:
        st = status_of(kube, namespace, "bot")
        assert (
            st.get("phase") != "Healthy" or not st.get("history") or st["history"][-1]["action"] != "Promoted"
        )
        return st if st.get("phase") == "RolledBack" else None

    status = wait_for(rolled_back, 240, "broken canary rolled back")
    last = status["history"][-1]
    assert last["action"] == "RolledBack" and "answers exactly like the base model" in last["message"], last
    assert status["stableRevision"] == stable_base and status["canaryWeight"] == 0
    deps = deployments(kube, namespace, "bot")
    assert deps[stable_base]["spec"]["replicas"] == 1
    wait_for(
        lambda: deployments(kube, namespace, "bot")[status["canaryRevision"]]["spec"]["replicas"] == 0,
        30,
        "canary at 0",
    )
    assert adapter_state(kube, namespace, "bot-broken") == "retired"
    warnings = [e for e in kube.events(namespace, "bot") if e["reason"] == "StartupProbeFailed"]
    assert len(warnings) == 1, warnings
    ip = wait_for(lambda: _ready_pod_ip(kube, namespace, stable_base), 30, "the stable pod still ready")
    assert generate(ip, "the support team")["generated_text"]


def test_analysis_without_prometheus_holds_until_a_manual_promote(
    kube: Kube, namespace: str, stable_base: str, adapter_dirs: dict[str, Path], adapter_registry: str
) -> None:
    assert adapter_registry.startswith("oci://"), "needs the docker-registry Debian package"
    register_adapter(kube, namespace, "bot-v2", adapter_dirs["working"], adapter_registry)
    kube.patch(
        MDEP.format(ns=namespace) + "/bot",
        {
            "spec": {
                "adapters": [{"name": "bot", "adapter": "bot-v2"}],
                "rollout": {
                    "steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}],
                    "analysis": {"interval": "2s", "window": "30s"},
                },
            }
        },
    )

    def holding() -> dict[str, object] | None:
        st = status_of(kube, namespace, "bot")
        verdict = (st.get("analysis") or {}).get("verdict")
        return st if st.get("currentStep") == 1 and verdict == "Inconclusive" else None

    status = wait_for(holding, 240, "holding at the analysis step")
    assert status["phase"] == "Progressing" and status["canaryWeight"] == 50, status
    assert any(e["reason"] == "PrometheusUnreachable" for e in kube.events(namespace, "bot"))
    kube.patch(
        MDEP.format(ns=namespace) + "/bot", {"metadata": {"annotations": {"kubetune.io/promote": "full"}}}
    )

    def promoted() -> bool:
        st = status_of(kube, namespace, "bot")
        return st.get("phase") == "Healthy" and st.get("stableRevision") == status["canaryRevision"]

    wait_for(promoted, 60, "promoted by the annotation")
    annotations = get_mdep(kube, namespace, "bot")["metadata"].get("annotations") or {}
    assert "kubetune.io/promote" not in annotations
    assert status_of(kube, namespace, "bot")["history"][-1]["action"] == "Promoted"


def test_promotion_from_a_last_step_below_100_keeps_the_old_stable_until_the_new_one_is_available(
    kube: Kube, namespace: str, stable_base: str, adapter_dirs: dict[str, Path], adapter_registry: str
) -> None:
    assert adapter_registry.startswith("oci://"), "needs the docker-registry Debian package"
    kube.patch(MDEP.format(ns=namespace) + "/bot", {"spec": {"replicas": 2}})

    def available(rev: str) -> int:
        dep = deployments(kube, namespace, "bot").get(rev) or {}
        return int((dep.get("status") or {}).get("availableReplicas") or 0)

    wait_for(lambda: available(stable_base) == 2, 120, "2 stable pods")
    register_adapter(kube, namespace, "bot-v3", adapter_dirs["working"], adapter_registry)
    kube.patch(
        MDEP.format(ns=namespace) + "/bot",
        {
            "spec": {
                "adapters": [{"name": "bot", "adapter": "bot-v3"}],
                "rollout": {"steps": [{"setWeight": 50}]},  # promoted with 1 of its 2 pods
            }
        },
    )
    canary = wait_for(
        lambda: status_of(kube, namespace, "bot").get("canaryRevision"), 30, "a canary revision"
    )
    both_after_promotion = 0

    def handed_over() -> bool:
        nonlocal both_after_promotion
        st = status_of(kube, namespace, "bot")
        assert st.get("phase") != "RolledBack", dump(kube, namespace, "bot")
        if st.get("stableRevision") != canary:
            return False
        deps = deployments(kube, namespace, "bot")
        new = deps[canary]
        new_available = int((new.get("status") or {}).get("availableReplicas") or 0)
        if stable_base in deps:
            both_after_promotion += 1
            return False
        # the old stable is gone only once the new one carries the full load
        assert new_available == new["spec"]["replicas"] == 2, dump(kube, namespace, "bot")
        return True

    wait_for(handed_over, 240, "promoted, then the old stable removed")
    assert both_after_promotion > 0  # the old stable was seen serving after the promotion


def test_a_canary_blind_past_its_progress_deadline_is_rolled_back(
    kube: Kube, namespace: str, stable_base: str, adapter_dirs: dict[str, Path], adapter_registry: str
) -> None:
    assert adapter_registry.startswith("oci://"), "needs the docker-registry Debian package"
    register_adapter(kube, namespace, "bot-v4", adapter_dirs["working"], adapter_registry)
    kube.patch(
        MDEP.format(ns=namespace) + "/bot",
        {
            "spec": {
                "adapters": [{"name": "bot", "adapter": "bot-v4"}],
                "rollout": {  # no Prometheus: every analysis holds
                    "steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}],
                    "analysis": {"interval": "2s", "window": "30s"},
                    "progressDeadline": "20s",
                },
            }
        },
    )

    def rolled_back() -> dict[str, object] | None:
        st = status_of(kube, namespace, "bot")
        return st if st.get("phase") == "RolledBack" else None

    status = wait_for(rolled_back, 240, "the stalled canary rolled back")
    last = status["history"][-1]  # type: ignore[index]
    assert "progressDeadline is 20s" in last["message"], last
    assert status["stableRevision"] == stable_base and status["canaryWeight"] == 0

    def warnings() -> list[dict[str, object]]:
        return [e for e in kube.events(namespace, "bot") if e["reason"] == "ProgressDeadlineExceeded"]

    # the status is written before the Event
    wait_for(lambda: warnings() or None, 30, "a ProgressDeadlineExceeded event")
    assert len(warnings()) == 1 and warnings()[0]["type"] == "Warning", warnings()
