"""What Flux (kstatus) and Argo CD (the chart's Lua health script) make of a live ModelDeployment.

One ModelDeployment goes through a whole GitOps promotion flow on the real control plane: it is
created (in progress), serves its first revision (Current/Healthy), gets a new Adapter and rolls
it out as a canary that pauses for a human (in progress; Suspended to Argo CD), is promoted
(Current/Healthy on the new revision), then gets another Adapter whose canary is aborted and
rolled back (Failed/Degraded: it stays so until the spec changes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops_helpers import Timeline, phase
from mdep_helpers import MDEP, make_adapter_dir, model_deployment, register_adapter

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(480)
PAUSED_CANARY = {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}


@pytest.fixture(scope="session")
def working_adapter(tiny_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter_dir(
        tiny_assets / "model", tmp_path_factory.mktemp("gitops") / "working", working=True
    )


def test_a_modeldeployment_is_healthy_only_while_its_desired_revision_serves(
    kube: Kube,
    namespace: str,
    data_pvc: Path,
    operator: kubetune_operator.Operator,
    adapter_registry: str,
    working_adapter: Path,
    kstatus: str,
    lua: str,
) -> None:
    path = MDEP.format(ns=namespace) + "/bot"
    created = kube.create(MDEP.format(ns=namespace), model_deployment("bot", rollout=PAUSED_CANARY))
    first = Timeline(kube, kstatus, lua, path)
    verdict = first.record(created, "created")
    assert (verdict.kstatus, verdict.argocd) == ("InProgress", "Progressing"), first.report()

    def available(o: dict[str, object]) -> bool:
        conds = {c["type"]: c["status"] for c in (o.get("status") or {}).get("conditions") or []}  # type: ignore[union-attr]
        return phase(o) == "Healthy" and conds.get("Available") == "True"

    serving = first.until(available, 150, "bot serving the base model")
    assert (serving.kstatus, serving.argocd) == ("Current", "Healthy"), first.report()
    for name, seen in first.seen.items():
        if name != "Healthy":
            assert seen.kstatus == "InProgress" and seen.argocd == "Progressing", first.report()

    # a new Adapter is committed: the canary rolls out and pauses for a human
    register_adapter(kube, namespace, "bot-v1", working_adapter, adapter_registry)
    kube.patch(path, {"spec": {"adapters": [{"name": "bot", "adapter": "bot-v1"}]}})
    rollout = Timeline(kube, kstatus, lua, path)
    paused = rollout.until(lambda o: phase(o) == "Paused", 240, "the canary paused")
    assert (paused.kstatus, paused.argocd) == ("InProgress", "Suspended"), rollout.report()
    assert "canary" in paused.kstatus_message and "50%" in paused.argocd_message, paused
    for seen in rollout.seen.values():
        assert seen.kstatus == "InProgress" and seen.argocd in ("Progressing", "Suspended"), rollout.report()
    canary = paused.obj["status"]["canaryRevision"]

    kube.patch(path, {"metadata": {"annotations": {"kubetune.io/promote": "full"}}})
    promoted = rollout.until(
        lambda o: phase(o) == "Healthy" and (o.get("status") or {}).get("stableRevision") == canary,  # type: ignore[union-attr]
        120,
        "the canary promoted",
    )
    promoted = rollout.until(available, 60, "the new stable available")
    assert (promoted.kstatus, promoted.argocd) == ("Current", "Healthy"), rollout.report()
    assert canary in promoted.argocd_message, promoted

    # another Adapter; its canary is aborted: rolled back, and it stays so until the spec changes
    register_adapter(kube, namespace, "bot-v2", working_adapter, adapter_registry)
    kube.patch(path, {"spec": {"adapters": [{"name": "bot", "adapter": "bot-v2"}]}})
    again = Timeline(kube, kstatus, lua, path)
    again.until(lambda o: phase(o) == "Paused", 240, "the second canary paused")
    kube.patch(path, {"metadata": {"annotations": {"kubetune.io/abort": "true"}}})
    rolled_back = again.until(lambda o: phase(o) == "RolledBack", 60, "the second canary rolled back")
    assert (rolled_back.kstatus, rolled_back.argocd) == ("Failed", "Degraded"), again.report()
    assert "rolled back" in rolled_back.kstatus_message and "Change the spec" in rolled_back.argocd_message
    assert rolled_back.obj["status"]["stableRevision"] == canary
