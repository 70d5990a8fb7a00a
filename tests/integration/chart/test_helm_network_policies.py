"""What the chart renders for a governed cluster: network policies, the operator's disruption
budget and anti-affinity, the operator's resource defaults.

The test control plane enforces no NetworkPolicy (no CNI), so the policies are checked as
rendered: which pods they select, and that a peer list left empty denies instead of allowing
everyone (an empty ``to``/``from`` in a NetworkPolicy means every peer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import documents, template

GATEWAY = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}}


def _kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _by_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in _kind(docs, "NetworkPolicy")}


def test_no_network_policy_unless_enabled(helm: str) -> None:
    assert not _kind(documents(helm), "NetworkPolicy")


def test_policies_for_each_team_namespace_and_the_operator(helm: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "networkPolicy:\n"
        "  enabled: true\n"
        "  namespaces: [team-a, team-b]\n"
        "  apiServer: {to: [{ipBlock: {cidr: 10.0.0.1/32}}]}\n"
        "  registry: {to: [{ipBlock: {cidr: 10.1.0.0/16}}]}\n"
        "  servingFrom:\n"
        "    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: gateway}}\n"
    )
    policies = _by_name(documents(helm, "-f", str(values)))
    assert set(policies) == {
        ("team-a", "t-kubetune-training"),
        ("team-a", "t-kubetune-serving"),
        ("team-b", "t-kubetune-training"),
        ("team-b", "t-kubetune-serving"),
        ("kubetune-system", "t-kubetune-operator"),
    }
    training = policies[("team-a", "t-kubetune-training")]["spec"]
    assert training["policyTypes"] == ["Ingress", "Egress"]
    peers = [rule["to"] for rule in training["egress"]]
    assert [{"ipBlock": {"cidr": "10.0.0.1/32"}}] in peers and [{"ipBlock": {"cidr": "10.1.0.0/16"}}] in peers
    # sources has no peers: no rule at all, never a rule without `to` (which would allow all)
    assert all(rule.get("to") for rule in training["egress"]), training["egress"]
    assert len(training["egress"]) == 4  # rendezvous, DNS, API server, registry
    serving = policies[("team-a", "t-kubetune-serving")]["spec"]
    assert serving["podSelector"] == {
        "matchExpressions": [{"key": "kubetune.io/modeldeployment", "operator": "Exists"}]
    }
    assert serving["ingress"] == [{"from": [GATEWAY], "ports": [{"port": "http", "protocol": "TCP"}]}]
    # the serving pods never talk to the API server
    assert all(rule.get("to") for rule in serving["egress"])
    assert [{"ipBlock": {"cidr": "10.0.0.1/32"}}] not in [rule["to"] for rule in serving["egress"]]
    operator = policies[("kubetune-system", "t-kubetune-operator")]["spec"]
    assert operator["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert {"ports": [{"port": "webhook", "protocol": "TCP"}]} in operator["ingress"]


def test_serving_pods_accept_nobody_when_no_peer_is_named(helm: str) -> None:
    docs = documents(helm, "--set", "networkPolicy.enabled=true", "--set", "watchNamespaces={ml}")
    serving = _by_name(docs)[("ml", "t-kubetune-serving")]["spec"]
    assert serving["ingress"] == []


def test_the_operator_has_a_disruption_budget_and_prefers_separate_nodes(helm: str) -> None:
    docs = documents(helm)
    (pdb,) = _kind(docs, "PodDisruptionBudget")
    (deployment,) = _kind(docs, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    terms = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = terms["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": selector},
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "podAntiAffinity=hard"], "requiredDuringSchedulingIgnoredDuringExecution"),
        (["--set", "podAntiAffinity=none"], None),
        (["--set", "affinity.nodeAffinity.x=y"], "nodeAffinity"),
    ],
)
def test_anti_affinity_can_be_required_dropped_or_replaced(
    helm: str, args: list[str], expected: str | None
) -> None:
    (deployment,) = _kind(documents(helm, *args), "Deployment")
    affinity = deployment["spec"]["template"]["spec"].get("affinity")
    if expected is None:
        assert affinity is None
    elif expected == "nodeAffinity":
        assert affinity == {"nodeAffinity": {"x": "y"}}
    else:
        assert expected in affinity["podAntiAffinity"]


def test_resource_defaults_reach_the_operator_and_bad_quantities_are_refused(helm: str) -> None:
    (deployment,) = _kind(documents(helm, "--set", "resourceDefaults.trainer.memory=96Gi"), "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KUBETUNE_TRAINER_MEMORY"] == "96Gi" and env["KUBETUNE_TRAINER_CPU"] == "4"
    assert env["KUBETUNE_VERIFIER_CPU"] == "100m" and env["KUBETUNE_PULL_MEMORY"] == "1Gi"
    result = template(helm, "--set", "resourceDefaults.serving.memory=lots")
    assert result.returncode != 0 and "/resourceDefaults/serving/memory" in result.stderr, result.stderr
