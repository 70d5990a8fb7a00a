"""Gateway API traffic routing on the real API server: with the upstream HTTPRoute CRD installed
(fetched from the Go module sigs.k8s.io/gateway-api by hack/fetch-gateway-api.sh), the
controller's HTTPRoute passes the CRD's schema and CEL rules, sends every request to stable at
first, splits by the canary weight during a rollout (an A/B header always reaches the canary,
each track Service selects its revision's pods), and sends everything to the promoted revision.
No gateway implementation runs here: what is checked is the route and Services it would follow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from mdep_helpers import MDEP, dump, make_adapter_dir, model_deployment, register_adapter, status_of

from kubetune.controllers import operator as kubetune_operator
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(420)
GATEWAY = {
    "parentRefs": [{"name": "inference-gateway", "sectionName": "http", "port": 80}],
    "hostnames": ["bot.example.com"],
    "header": {"name": "x-canary", "value": "always"},
}


@pytest.fixture(scope="session")
def gateway_api(cluster: Cluster) -> str:
    """The HTTPRoute CRD installed and Established; its API version."""
    root = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune")) / "gateway-api"
    found = sorted(root.glob("*/gateway.networking.k8s.io_httproutes.yaml"))
    if not found:
        message = "no Gateway API CRDs in ~/.cache/kubetune/gateway-api: run hack/fetch-gateway-api.sh"
        if os.environ.get("KUBETUNE_REQUIRE_CLUSTER"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert cluster.install_crds([found[-1]]) == ["httproutes.gateway.networking.k8s.io"]
    return "gateway.networking.k8s.io/v1"


def _route(kube: Kube, namespace: str) -> dict[str, Any] | None:
    return kube.get_or_none(f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/bot")


def _weights(route: dict[str, Any]) -> dict[str, int]:
    split = route["spec"]["rules"][-1]["backendRefs"]
    return {b["name"]: b["weight"] for b in split}


def _selects(kube: Kube, namespace: str, service: str) -> str:
    svc = kube.get(f"/api/v1/namespaces/{namespace}/services/{service}")
    return str(svc["spec"]["selector"]["kubetune.io/revision"])


def test_httproute_follows_the_rollout_from_stable_through_the_canary_to_promotion(
    kube: Kube,
    namespace: str,
    gateway_api: str,
    data_pvc: Path,
    adapter_registry: str,
    operator: kubetune_operator.Operator,
    tmp_path: Path,
) -> None:
    assert adapter_registry.startswith("oci://"), "needs the docker-registry Debian package"
    steps = [{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}]
    kube.create(
        MDEP.format(ns=namespace),
        model_deployment("bot", rollout={"steps": steps, "trafficRouting": {"gateway": GATEWAY}}),
    )

    def healthy() -> str | None:
        st = status_of(kube, namespace, "bot")
        return st.get("stableRevision") if st.get("phase") == "Healthy" else None

    stable = wait_for(healthy, 150, "bot Healthy on the base model")
    route = wait_for(lambda: _route(kube, namespace), 30, "HTTPRoute bot")
    assert route["apiVersion"] == gateway_api
    parent = route["spec"]["parentRefs"][0]
    assert (parent["name"], parent["sectionName"], parent["port"]) == ("inference-gateway", "http", 80)
    assert route["spec"]["hostnames"] == ["bot.example.com"]
    assert _weights(route) == {"bot-stable": 100, "bot-canary": 0}
    routed = {c["type"]: c for c in status_of(kube, namespace, "bot")["conditions"]}["Routed"]
    assert routed["status"] == "True", dump(kube, namespace, "bot")
    assert _selects(kube, namespace, "bot-stable") == stable

    adapter_dir = make_adapter_dir(data_pvc / "model", tmp_path / "adapter", working=True)
    register_adapter(kube, namespace, "bot-v1", adapter_dir, adapter_registry)
    kube.patch(
        MDEP.format(ns=namespace) + "/bot", {"spec": {"adapters": [{"name": "bot", "adapter": "bot-v1"}]}}
    )

    def paused() -> dict[str, Any] | None:
        st = status_of(kube, namespace, "bot")
        assert st.get("phase") != "RolledBack", dump(kube, namespace, "bot")
        return st if st.get("currentStep") == 1 and st.get("canaryWeight") == 30 else None

    status = wait_for(paused, 240, "paused at 30%")
    canary = status["canaryRevision"]
    route = wait_for(
        lambda: (r := _route(kube, namespace)) and _weights(r) == {"bot-stable": 70, "bot-canary": 30} and r,
        30,
        "HTTPRoute at 70/30",
    )
    ab = route["spec"]["rules"][0]
    # the API server adds its defaults (a PathPrefix / match, backendRef group and kind)
    assert ab["matches"][0]["headers"] == [{"type": "Exact", "name": "x-canary", "value": "always"}]
    assert [b["name"] for b in ab["backendRefs"]] == ["bot-canary"]
    assert (_selects(kube, namespace, "bot-stable"), _selects(kube, namespace, "bot-canary")) == (
        stable,
        canary,
    )

    kube.patch(
        MDEP.format(ns=namespace) + "/bot", {"metadata": {"annotations": {"kubetune.io/promote": "full"}}}
    )
    wait_for(lambda: healthy() == canary, 120, "canary promoted")
    route = wait_for(
        lambda: (r := _route(kube, namespace)) and _weights(r)["bot-stable"] == 100 and r,
        30,
        "HTTPRoute at 100/0",
    )
    assert _weights(route) == {"bot-stable": 100, "bot-canary": 0}
    assert _selects(kube, namespace, "bot-stable") == canary
