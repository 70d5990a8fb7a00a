"""ModelDeployment reconcile against an in-memory API: children, status, Adapter states.

The integration and e2e levels run the same code against a real API server; these pin the
bookkeeping that is easy to get subtly wrong (merge-patch nulls, which Adapters a promotion
retires, canary failure messages) and run in milliseconds.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubetune.clients import kube as kubeclient
from kubetune.controllers.modeldeployment import builders
from kubetune.controllers.modeldeployment.reconcile import Reconciler
from kubetune.controllers.settings import Settings

Obj = dict[str, Any]
NS = "ml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
REF1 = "oci://registry.test/ml/bot@sha256:" + "1" * 64
REF2 = "oci://registry.test/ml/bot@sha256:" + "2" * 64


def _merge(target: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeKube:
    """Objects by URL path; list by label selector; merge patches with null = delete."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.events: list[tuple[str, str, str]] = []
        self.status_patches: list[Obj] = []

    def _url(self, obj: Obj) -> str:
        meta = obj["metadata"]
        return kubeclient.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])

    def get(self, url: str) -> Obj | None:
        obj = self.objects.get(url.removesuffix("/status"))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, url: str, labelSelector: str = "") -> list[Obj]:
        wanted = dict(p.split("=", 1) for p in labelSelector.split(",") if p)
        out = []
        for key, obj in self.objects.items():
            labels = obj["metadata"].get("labels") or {}
            if key.rsplit("/", 1)[0] == url and all(labels.get(k) == v for k, v in wanted.items()):
                out.append(copy.deepcopy(obj))
        return out

    def create(self, obj: Obj) -> Obj | None:
        url = self._url(obj)
        if url in self.objects:
            return None
        stored = copy.deepcopy(obj)
        stored["metadata"].setdefault("generation", 1)
        stored["metadata"].setdefault("uid", f"uid-{len(self.objects)}")
        self.objects[url] = stored
        return copy.deepcopy(stored)

    def patch(self, url: str, body: Obj) -> Obj | None:
        obj = self.objects.get(url.removesuffix("/status"))
        if obj is None:
            return None
        if url.endswith("/status"):
            self.status_patches.append(copy.deepcopy(body))
            obj.setdefault("status", {})
            _merge(obj, {"status": body["status"]})
        else:
            _merge(obj, body)
        return copy.deepcopy(obj)

    def delete(self, url: str) -> bool:
        return self.objects.pop(url, None) is not None

    def event(self, involved: Obj, type: str, reason: str, message: str, **_: Any) -> None:
        self.events.append((type, reason, message))


def mdep(**spec: Any) -> Obj:
    body: Obj = {
        "baseModel": {"uri": "pvc://data/model"},
        "replicas": 1,
        "resources": {"gpus": 0},
        "rollout": {"steps": [{"setWeight": 50}, {"setWeight": 100}]},
    }
    body.update(spec)
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "bot", "namespace": NS, "uid": "u-bot", "generation": 1},
        "spec": body,
    }


def adapter(name: str, ref: str) -> Obj:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "Adapter",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"ref": ref},
        "status": {"state": "candidate"},
    }


class World:
    def __init__(self) -> None:
        self.kube = FakeKube()
        self.now = T0
        self.rec = Reconciler(self.kube, Settings(), clock=lambda: self.now)  # type: ignore[arg-type]

    def pass_(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)
        self.rec.reconcile(NS, "bot")

    @property
    def status(self) -> Obj:
        return self.kube.objects[kubeclient.path("kubetune.io/v1alpha1", "ModelDeployment", NS, "bot")][
            "status"
        ]

    def deployments(self) -> dict[str, Obj]:
        found = self.kube.list(
            kubeclient.path("apps/v1", "Deployment", NS), "kubetune.io/modeldeployment=bot"
        )
        return {d["metadata"]["labels"][builders.LABEL_REVISION]: d for d in found}

    def make_available(self) -> None:
        for d in self.deployments().values():
            url = kubeclient.path("apps/v1", "Deployment", NS, d["metadata"]["name"])
            self.kube.objects[url]["status"] = {"availableReplicas": d["spec"]["replicas"]}

    def state(self, name: str) -> str:
        return str(
            self.kube.objects[kubeclient.path("kubetune.io/v1alpha1", "Adapter", NS, name)]["status"]["state"]
        )

    def point_at(self, name: str) -> None:
        url = kubeclient.path("kubetune.io/v1alpha1", "ModelDeployment", NS, "bot")
        self.kube.patch(
            url, {"spec": {"adapters": [{"name": "bot", "adapter": name}]}, "metadata": {"generation": 2}}
        )


@pytest.fixture
def world() -> World:
    w = World()
    w.kube.create(adapter("bot-v1", REF1))
    w.kube.create(adapter("bot-v2", REF2))
    w.kube.create(mdep(adapters=[{"name": "bot", "adapter": "bot-v1"}]))
    return w


def test_first_revision_is_pending_until_its_pods_are_available_then_healthy(world: World) -> None:
    world.pass_()
    (rev,) = world.deployments()
    assert world.status["stableRevision"] == rev and world.status["phase"] == "Pending"
    assert world.kube.get(kubeclient.path("v1", "Service", NS, "bot")) is not None
    world.make_available()
    world.pass_()
    assert world.status["phase"] == "Healthy"
    available = next(c for c in world.status["conditions"] if c["type"] == "Available")
    assert available["status"] == "True" and world.state("bot-v1") == "stable"


def test_promotion_retires_the_old_adapter_removes_its_revision_and_nulls_the_canary(world: World) -> None:
    world.pass_()
    world.make_available()
    world.pass_()
    (old,) = world.deployments()
    world.point_at("bot-v2")
    world.pass_()
    canary = world.status["canaryRevision"]
    assert world.state("bot-v2") == "canary" and world.status["canaryWeight"] == 50
    assert {r: d["spec"]["replicas"] for r, d in world.deployments().items()} == {old: 1, canary: 1}
    for _ in range(4):
        world.make_available()
        world.pass_()
    assert world.status["phase"] == "Healthy" and world.status["stableRevision"] == canary
    assert "canaryRevision" not in world.status  # sent as null, not left behind
    assert set(world.deployments()) == {canary}
    assert world.state("bot-v2") == "stable" and world.state("bot-v1") == "retired"
    promoted = [e for e in world.kube.events if e[1] == "Promoted"]
    assert len(promoted) == 1
    events = len(world.kube.events)
    world.pass_()
    assert len(world.kube.events) == events  # a settled deployment records nothing more


def test_missing_adapter_keeps_stable_serving_and_says_which(world: World) -> None:
    world.pass_()
    world.make_available()
    world.pass_()
    world.point_at("bot-v3")
    world.pass_()
    world.pass_()
    progressing = next(c for c in world.status["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "AdapterNotFound" and "'bot-v3' not found" in progressing["message"]
    assert len([e for e in world.kube.events if e[1] == "AdapterNotFound"]) == 1
    assert len(world.deployments()) == 1 and world.status["phase"] == "Healthy"


def test_a_verifier_that_gave_up_rolls_the_canary_back_with_its_reason(world: World) -> None:
    world.pass_()
    world.make_available()
    world.pass_()
    world.point_at("bot-v2")
    world.pass_()
    canary = world.status["canaryRevision"]
    world.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "bot-canary-pod",
                "namespace": NS,
                "labels": {"kubetune.io/modeldeployment": "bot", "kubetune.io/revision": canary},
            },
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "tgi", "restartCount": 0},
                    {
                        "name": "verifier",
                        "restartCount": 1,
                        "lastState": {
                            "terminated": {"exitCode": 143, "message": "adapter bot answers like the base"}
                        },
                    },
                ],
            },
        }
    )
    world.pass_()
    assert world.status["phase"] == "RolledBack" and world.status["canaryWeight"] == 0
    assert "adapter bot answers like the base" in world.status["history"][-1]["message"]
    replicas = {r: d["spec"]["replicas"] for r, d in world.deployments().items()}
    assert replicas[canary] == 0 and replicas[world.status["stableRevision"]] == 1
    assert world.state("bot-v2") == "retired" and world.state("bot-v1") == "stable"


def test_a_higher_weight_waits_for_the_canary_pods_it_needs() -> None:
    w = World()
    w.kube.create(adapter("bot-v2", REF2))
    w.kube.create(mdep(replicas=4, rollout={"steps": [{"setWeight": 25}, {"setWeight": 75}]}))
    w.pass_()
    w.make_available()
    w.pass_()
    w.point_at("bot-v2")
    w.pass_()  # canary at 25%: 3 stable + 1 canary
    w.make_available()
    w.pass_()  # ready for 25%: weight 75 -> 1 stable + 3 canary, only 1 canary pod available
    assert w.status["canaryWeight"] == 75 and w.status["currentStep"] == 1
    canary = w.status["canaryRevision"]
    assert w.deployments()[canary]["spec"]["replicas"] == 3
    w.pass_()
    assert w.status["phase"] == "Progressing"  # still 1 of 3
    w.make_available()
    w.pass_()
    assert w.status["phase"] == "Healthy" and w.status["stableRevision"] == canary


def test_status_command_renders_a_rollout_for_people(world: World) -> None:
    from kubetune.cli.status import render_deployment

    world.pass_()
    world.make_available()
    world.pass_()
    world.point_at("bot-v2")
    world.pass_()
    obj = world.kube.get(kubeclient.path("kubetune.io/v1alpha1", "ModelDeployment", NS, "bot"))
    assert obj is not None
    text = render_deployment(obj)
    assert "ModelDeployment ml/bot" in text and "weight 50%" in text and "bot=bot-v2" in text
    assert "CanaryStarted" in text and "step 1/2" in text


def test_gateway_routing_without_the_gateway_api_says_so_and_keeps_serving() -> None:
    class NoGatewayApi(FakeKube):
        def create(self, obj: Obj) -> Obj | None:
            if obj["kind"] == "HTTPRoute":
                raise kubeclient.ApiError(404, "the server could not find the requested resource")
            return super().create(obj)

    w = World()
    w.kube = NoGatewayApi()
    w.rec.kube = w.kube  # type: ignore[assignment]
    gateway = {"trafficRouting": {"gateway": {"parentRefs": [{"name": "gw"}]}}}
    w.kube.create(mdep(rollout={"steps": [{"setWeight": 50}], **gateway}))
    w.pass_()
    w.make_available()
    w.pass_()
    routed = next(c for c in w.status["conditions"] if c["type"] == "Routed")
    assert routed["status"] == "False" and "install the Gateway API CRDs" in routed["message"]
    assert w.status["phase"] == "Healthy"
    assert [e[1] for e in w.kube.events].count("GatewayAPIMissing") == 1
    assert w.kube.get(kubeclient.path("v1", "Service", NS, "bot-stable")) is not None


def test_gateway_routing_reports_routed_true_and_the_condition_goes_with_the_gateway() -> None:
    w = World()
    gateway = {"trafficRouting": {"gateway": {"parentRefs": [{"name": "gw"}]}}}
    w.kube.create(mdep(rollout={"steps": [{"setWeight": 50}], **gateway}))
    w.pass_()
    routed = next(c for c in w.status["conditions"] if c["type"] == "Routed")
    assert (routed["status"], routed["reason"]) == ("True", "RouteWritten")
    assert w.kube.get(kubeclient.path("gateway.networking.k8s.io/v1", "HTTPRoute", NS, "bot")) is not None
    url = kubeclient.path("kubetune.io/v1alpha1", "ModelDeployment", NS, "bot")
    w.kube.objects[url]["spec"]["rollout"].pop("trafficRouting")
    w.pass_()
    assert "Routed" not in [c["type"] for c in w.status["conditions"]]


def test_an_adapter_retired_by_one_deployment_stays_stable_for_another_that_serves_it(world: World) -> None:
    alt = mdep(adapters=[{"name": "bot", "adapter": "bot-v1"}])
    alt["metadata"].update(name="alt", uid="u-alt")
    world.kube.create(alt)

    def settle(name: str) -> None:
        for _ in range(5):
            world.now += timedelta(seconds=1)
            world.rec.reconcile(NS, name)
            for url, obj in world.kube.objects.items():
                if obj["kind"] == "Deployment":
                    world.kube.objects[url]["status"] = {"availableReplicas": obj["spec"]["replicas"]}

    settle("bot")
    settle("alt")
    v1 = world.kube.objects[kubeclient.path("kubetune.io/v1alpha1", "Adapter", NS, "bot-v1")]["status"]
    assert v1 == {"state": "stable", "deployments": ["ml/alt", "ml/bot"]}
    world.point_at("bot-v2")  # only "bot" moves on
    settle("bot")
    assert world.status["phase"] == "Healthy" and world.state("bot-v2") == "stable"
    v1 = world.kube.objects[kubeclient.path("kubetune.io/v1alpha1", "Adapter", NS, "bot-v1")]["status"]
    assert v1 == {"state": "stable", "deployments": ["ml/alt"]}  # alt still serves it
    world.kube.delete(kubeclient.path("kubetune.io/v1alpha1", "ModelDeployment", NS, "alt"))


class ConflictOnce(FakeKube):
    """The first status patch of an Adapter finds it changed by someone else (HTTP 409)."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def patch(self, url: str, body: Obj) -> Obj | None:
        if "/adapters/" in url and url.endswith("/status") and not self.conflicts:
            self.conflicts += 1
            assert body["metadata"]["resourceVersion"] == "7"
            target = self.objects[url.removesuffix("/status")]
            target["status"]["deployments"] = ["ml/other"]  # the concurrent writer's change
            target["metadata"]["resourceVersion"] = "8"
            raise kubeclient.ApiError(409, "the object has been modified")
        return super().patch(url, body)


def test_a_concurrent_adapter_status_write_is_retried_not_overwritten() -> None:
    w = World()
    w.kube = ConflictOnce()
    w.rec = Reconciler(w.kube, Settings(), clock=lambda: w.now)  # type: ignore[arg-type]
    v1 = adapter("bot-v1", REF1)
    v1["metadata"]["resourceVersion"] = "7"
    w.kube.create(v1)
    w.kube.create(mdep(adapters=[{"name": "bot", "adapter": "bot-v1"}]))
    w.pass_()
    w.make_available()
    w.pass_()
    assert w.kube.conflicts == 1
    status = w.kube.objects[kubeclient.path("kubetune.io/v1alpha1", "Adapter", NS, "bot-v1")]["status"]
    assert status == {"state": "stable", "deployments": ["ml/bot", "ml/other"]}


def test_a_child_the_api_server_refuses_is_invalid_spec_not_an_endless_retry(world: World) -> None:
    refused = 'Deployment.apps "bot-0123456789" is invalid: spec.template.spec.initContainers[0].name: Invalid value'

    def create(obj: Obj) -> Obj | None:
        if obj["kind"] == "Deployment":
            raise kubeclient.ApiError(422, refused)
        return FakeKube.create(world.kube, obj)

    world.kube.create = create  # type: ignore[method-assign]
    world.pass_()  # raised before: the handlers retried it forever
    assert world.status["phase"] == "Failed"
    cond = next(c for c in world.status["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert cond["message"] == f"the API server refused a child of this ModelDeployment: {refused}"
    assert [e[1] for e in world.kube.events] == ["InvalidSpec"]
    world.pass_()
    assert [e[1] for e in world.kube.events] == ["InvalidSpec"]  # one event, not one per pass


def test_a_stalled_rollout_on_hold_says_so_in_a_condition_and_one_warning(world: World) -> None:
    url = kubeclient.path("kubetune.io/v1alpha1", "ModelDeployment", NS, "bot")
    world.kube.objects[url]["spec"]["rollout"] = {
        "steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}],
        "analysis": {"interval": "1m", "window": "1m"},  # no Prometheus configured: blind
        "progressDeadline": "5m",
        "onStalled": "hold",
    }
    world.pass_()
    world.make_available()
    world.pass_()
    world.point_at("bot-v2")
    world.pass_()
    for _ in range(8):
        world.make_available()
        world.pass_(60)
    stalled = next(c for c in world.status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "ProgressDeadlineExceeded"
    assert "progressDeadline is 5m" in stalled["message"]
    assert world.status["phase"] == "Progressing" and world.status["canaryWeight"] == 50
    warnings = [e for e in world.kube.events if e[1] == "ProgressDeadlineExceeded"]
    assert len(warnings) == 1 and warnings[0][0] == "Warning"


def _promoted_from_half(gateway: bool) -> tuple[World, str, str]:
    """replicas 4, one step of 50%: promotion finds the canary with 2 of the 4 pods it needs."""
    w = World()
    w.kube.create(adapter("bot-v2", REF2))
    routing = {"trafficRouting": {"gateway": {"parentRefs": [{"name": "gw"}]}}} if gateway else {}
    w.kube.create(mdep(replicas=4, rollout={"steps": [{"setWeight": 50}], **routing}))
    w.pass_()
    w.make_available()
    w.pass_()
    (old,) = w.deployments()
    w.point_at("bot-v2")
    w.pass_()  # canary at 50%
    new = w.status["canaryRevision"]
    w.make_available()
    w.pass_()  # the last step is done: promoted, and the new stable is scaled to 4
    assert w.status["phase"] == "Healthy" and w.status["stableRevision"] == new
    return w, old, new


def _set_available(w: World, rev: str, count: int) -> None:
    name = w.deployments()[rev]["metadata"]["name"]
    w.kube.objects[kubeclient.path("apps/v1", "Deployment", NS, name)]["status"] = {
        "availableReplicas": count
    }


def test_promotion_keeps_the_old_stable_serving_until_the_new_one_is_fully_available() -> None:
    w, old, new = _promoted_from_half(gateway=False)
    replicas = {r: d["spec"]["replicas"] for r, d in w.deployments().items()}
    assert replicas == {old: 2, new: 4}  # the old stable's 2 pods were not cut
    _set_available(w, new, 3)
    w.pass_()
    assert set(w.deployments()) == {old, new} and w.deployments()[old]["spec"]["replicas"] == 2
    _set_available(w, new, 4)
    w.pass_()
    assert set(w.deployments()) == {new}


def test_with_a_gateway_the_route_moves_to_the_promoted_revision_as_its_pods_become_available() -> None:
    w, old, new = _promoted_from_half(gateway=True)

    def route() -> tuple[str, str, dict[str, int]]:
        stable = w.kube.get(kubeclient.path("v1", "Service", NS, "bot-stable"))
        canary = w.kube.get(kubeclient.path("v1", "Service", NS, "bot-canary"))
        r = w.kube.get(kubeclient.path("gateway.networking.k8s.io/v1", "HTTPRoute", NS, "bot"))
        assert stable and canary and r
        weights = {b["name"]: b["weight"] for b in r["spec"]["rules"][-1]["backendRefs"]}
        rev = builders.LABEL_REVISION
        return stable["spec"]["selector"][rev], canary["spec"]["selector"][rev], weights

    w.pass_()
    assert route() == (old, new, {"bot-stable": 50, "bot-canary": 50})  # 2 of 4 new pods available
    _set_available(w, new, 3)
    w.pass_()
    assert route() == (old, new, {"bot-stable": 25, "bot-canary": 75})
    _set_available(w, new, 4)
    w.pass_()
    w.pass_()
    assert set(w.deployments()) == {new}
    assert route() == (new, new, {"bot-stable": 100, "bot-canary": 0})


def test_a_service_of_that_name_made_by_someone_else_is_left_alone_and_said_so(world: World) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bot", "namespace": NS, "uid": "theirs"},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    }
    world.kube.create(copy.deepcopy(foreign))
    world.pass_()
    world.pass_()
    url = kubeclient.path("v1", "Service", NS, "bot")
    assert world.kube.objects[url]["spec"] == foreign["spec"]  # never patched into ours
    cond = next(c for c in world.status["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ForeignChild")
    assert "Service ml/bot exists and is not owned by this ModelDeployment" in cond["message"]
    assert [e[1] for e in world.kube.events].count("ForeignChild") == 1  # one warning, not one per pass
    world.kube.delete(url)  # the owner renames theirs: the next pass goes on by itself
    world.pass_()
    assert world.kube.objects[url]["metadata"]["ownerReferences"][0]["uid"] == "u-bot"


def test_a_deployment_that_copies_the_labels_is_never_scaled_or_deleted(world: World) -> None:
    world.pass_()
    world.make_available()
    world.pass_()
    (rev,) = world.deployments()
    impostor = copy.deepcopy(world.deployments()[rev])
    impostor["metadata"].update(name="impostor", uid="theirs", ownerReferences=[])
    impostor["metadata"]["labels"][builders.LABEL_REVISION] = "0000000000"
    impostor["spec"]["replicas"] = 3
    world.kube.create(impostor)
    world.point_at("bot-v2")
    for _ in range(6):
        world.make_available()
        world.pass_()
    stored = world.kube.objects[kubeclient.path("apps/v1", "Deployment", NS, "impostor")]
    assert stored["spec"]["replicas"] == 3 and world.status["phase"] == "Healthy"
