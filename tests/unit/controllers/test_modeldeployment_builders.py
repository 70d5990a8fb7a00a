"""ModelDeployment children: revision hashing, replica split, TGI Deployment, route, golden files.

Regenerate golden files after an intended change with ``UPDATE_GOLDEN=1`` and review the diff.
"""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.controllers.modeldeployment import builders
from kubetune.controllers.settings import Compute

GOLDEN = Path(__file__).parent / "golden"
DIGEST = "oci://registry.test/ml/bot@sha256:" + "a" * 64
DIGEST2 = "oci://registry.test/ml/bot@sha256:" + "b" * 64


def make(**spec: Any) -> ModelDeployment:
    base: dict[str, Any] = {
        "baseModel": {"uri": "oci://registry.test/models/llama@sha256:" + "c" * 64},
        "adapters": [{"name": "bot", "adapter": "bot-v1"}],
        "replicas": 4,
        "resources": {"gpus": 1, "memory": "24Gi"},
        "runtime": {"quantize": "bitsandbytes", "maxInputTokens": 1024, "maxTotalTokens": 2048},
    }
    base.update(spec)
    return ModelDeployment.model_validate(
        {
            "kind": "ModelDeployment",
            "metadata": {"name": "bot", "namespace": "ml", "uid": "u-1"},
            "spec": base,
        }
    )


def test_revision_changes_with_adapter_digest_but_not_replicas_or_rollout() -> None:
    rev = builders.revision(make(), {"bot": DIGEST})
    assert len(rev) == 10
    assert builders.revision(make(replicas=9), {"bot": DIGEST}) == rev
    assert builders.revision(make(rollout={"steps": [{"setWeight": 100}]}), {"bot": DIGEST}) == rev
    assert builders.revision(make(), {"bot": DIGEST2}) != rev
    assert builders.revision(make(runtime={"quantize": "awq"}), {"bot": DIGEST}) != rev


def test_unresolved_adapter_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="no resolved reference"):
        builders.revision(make(), {})


@pytest.mark.parametrize(
    ("total", "weight", "gateway", "expected"),
    [
        (4, 0, False, (4, 0)),
        (4, 25, False, (3, 1)),
        (4, 50, False, (2, 2)),
        (4, 100, False, (0, 4)),
        (1, 10, False, (1, 1)),
        (4, 10, True, (4, 1)),
        (4, 60, True, (4, 3)),
    ],
)
def test_replica_split_follows_weight(
    total: int, weight: int, gateway: bool, expected: tuple[int, int]
) -> None:
    assert builders.replicas(total, weight, gateway=gateway) == expected


def test_deployment_runs_tgi_with_adapters_quantize_and_pulls_by_digest() -> None:
    dep = builders.deployment(make(), "abc123", "canary", 1, {"bot": DIGEST})
    pod = dep["spec"]["template"]["spec"]
    tgi = pod["containers"][0]
    assert tgi["args"][:2] == ["--model-id", "/models/base"]
    i = tgi["args"].index("--quantize")
    assert tgi["args"][i + 1] == "bitsandbytes"
    env = {e["name"]: e.get("value") for e in tgi["env"]}
    assert env["LORA_ADAPTERS"] == "bot=/adapters/bot"
    pulls = [c["command"] for c in pod["initContainers"]]
    assert ["kubetune", "registry", "pull", DIGEST, "/adapters/bot"] in pulls
    assert any(cmd[3].startswith("oci://registry.test/models/llama@sha256:") for cmd in pulls)
    assert tgi["resources"]["limits"]["nvidia.com/gpu"] == 1
    verifier = pod["containers"][1]
    assert verifier["startupProbe"]["httpGet"]["path"] == "/verified"
    assert "--adapters" in verifier["args"] and "bot" in verifier["args"]
    assert verifier["startupProbe"]["failureThreshold"] == 120  # verification.timeout 10m / 5 s
    labels = dep["spec"]["template"]["metadata"]["labels"]
    # the track is on the Deployment only: promoted pods keep serving without a label change
    assert labels["kubetune.io/revision"] == "abc123" and "kubetune.io/track" not in labels
    assert dep["metadata"]["labels"]["kubetune.io/track"] == "canary"
    assert dep["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_hf_model_is_passed_to_tgi_without_a_pull() -> None:
    dep = builders.deployment(
        make(baseModel={"uri": "hf://org/model@main"}), "r", "stable", 1, {"bot": DIGEST}
    )
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][:2] == ["--model-id", "org/model"]
    assert len(pod["initContainers"]) == 1


def test_pvc_model_is_mounted_read_only_from_its_claim() -> None:
    mdep = make(baseModel={"uri": "pvc://data/models/tiny"}, verification={"timeout": "30s"})
    pod = builders.deployment(mdep, "r", "stable", 1, {"bot": DIGEST})["spec"]["template"]["spec"]
    tgi = pod["containers"][0]
    assert tgi["args"][:2] == ["--model-id", "/mnt/pvc/data/models/tiny"]
    assert {"name": "base-model", "mountPath": "/mnt/pvc/data", "readOnly": True} in tgi["volumeMounts"]
    claim = next(v for v in pod["volumes"] if v["name"] == "base-model")["persistentVolumeClaim"]
    assert claim == {"claimName": "data", "readOnly": True}
    assert pod["containers"][1]["startupProbe"]["failureThreshold"] == 6


def test_track_services_select_a_revision() -> None:
    svc = builders.service(make(), "canary", "rev2")
    assert svc["spec"]["selector"] == {"kubetune.io/modeldeployment": "bot", "kubetune.io/revision": "rev2"}
    with pytest.raises(ValueError, match="needs the revision"):
        builders.service(make(), "stable")


def test_http_route_splits_by_weight_with_ab_header() -> None:
    mdep = make(
        rollout={
            "trafficRouting": {
                "gateway": {"parentRefs": [{"name": "gw"}], "header": {"name": "x-canary", "value": "1"}}
            }
        }
    )
    route = builders.http_route(mdep, 30)
    header_rule, weighted = route["spec"]["rules"]
    assert header_rule["backendRefs"] == [{"name": "bot-canary", "port": 80}]
    assert [b["weight"] for b in weighted["backendRefs"]] == [70, 30]


def test_parent_refs_take_a_listener_port_and_section_and_reject_a_named_port() -> None:
    ref = {"name": "gw", "namespace": "infra", "sectionName": "https", "port": 443}
    mdep = make(rollout={"trafficRouting": {"gateway": {"parentRefs": [ref]}}})
    assert builders.http_route(mdep, 0)["spec"]["parentRefs"] == [ref]  # port stays a number
    with pytest.raises(ValidationError, match="port"):
        make(rollout={"trafficRouting": {"gateway": {"parentRefs": [{"name": "gw", "port": "https"}]}}})


def test_children_match_golden() -> None:
    mdep = make(
        rollout={
            "trafficRouting": {"gateway": {"parentRefs": [{"name": "gw"}], "hostnames": ["bot.example.com"]}}
        }
    )
    docs = [
        builders.deployment(mdep, "stable1", "stable", 4, {"bot": DIGEST}),
        builders.deployment(mdep, "canary1", "canary", 1, {"bot": DIGEST2}),
        builders.service(mdep),
        builders.pod_disruption_budget(mdep),
        builders.service(mdep, "canary", "canary1"),
        builders.http_route(mdep, 20),
    ]
    text = yaml.safe_dump_all(docs, sort_keys=True)
    path = GOLDEN / "modeldeployment-canary.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), (
        f"{path} differs; if intended, regenerate with UPDATE_GOLDEN=1 and review"
    )


def _pod(mdep: ModelDeployment) -> dict[str, Any]:
    return builders.deployment(mdep, "rev1", "stable", 1, {"bot": DIGEST})["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _tgi_args(mdep: ModelDeployment) -> list[str]:
    return list(_pod(mdep)["containers"][0]["args"])


def test_a_hugging_face_revision_reaches_tgi_as_revision() -> None:
    args = _tgi_args(make(baseModel={"uri": "hf://meta-llama/Llama-3.2-1B@a1b2c3d"}))
    assert args[args.index("--model-id") + 1] == "meta-llama/Llama-3.2-1B"
    assert args[args.index("--revision") + 1] == "a1b2c3d"
    assert "--revision" not in _tgi_args(make(baseModel={"uri": "hf://meta-llama/Llama-3.2-1B"}))


def test_pull_containers_read_the_registry_secret_mounted_where_docker_config_points() -> None:
    pod = _pod(make(registrySecret={"name": "regcred"}))
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {
        "secretName": "regcred",
        "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
    }
    assert len(pod["initContainers"]) == 2  # base model and adapter
    for init in pod["initContainers"]:
        env = {e["name"]: e["value"] for e in init["env"]}
        mounts = {m["name"]: m for m in init["volumeMounts"]}
        assert mounts[volume["name"]]["mountPath"] == env["DOCKER_CONFIG"]
        assert mounts[volume["name"]]["readOnly"] is True


def test_without_a_registry_secret_docker_config_points_nowhere_unmounted() -> None:
    pod = _pod(make())
    for init in pod["initContainers"]:
        mounted = {m["mountPath"] for m in init["volumeMounts"]}
        for e in init["env"]:
            if e["name"] == "DOCKER_CONFIG":
                assert e["value"] in mounted


def test_a_registry_secret_is_part_of_the_revision_and_its_absence_keeps_old_hashes() -> None:
    rev = builders.revision(make(), {"bot": DIGEST})
    assert rev == "94bde4ac7e"  # as before registrySecret existed: no canary on operator upgrade
    assert builders.revision(make(registrySecret={"name": "regcred"}), {"bot": DIGEST}) != rev


def test_every_container_passes_the_restricted_pod_security_standard() -> None:
    pod = _pod(make(baseModel={"uri": "pvc://models/llama"}, registrySecret={"name": "regcred"}))
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    containers = [*pod["initContainers"], *pod["containers"]]
    assert {c["name"] for c in containers} == {"pull-adapter-bot", "tgi", "verifier"}
    for c in containers:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert sc.get("runAsUser", psc["runAsUser"]) != 0 and sc.get("runAsNonRoot", True) is True
        assert sc.get("seccompProfile", psc["seccompProfile"])["type"] == "RuntimeDefault"
    by_name = {c["name"]: c for c in containers}
    assert by_name["pull-adapter-bot"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert by_name["verifier"]["securityContext"]["readOnlyRootFilesystem"] is True
    allowed = {"emptyDir", "secret", "persistentVolumeClaim", "configMap"}
    assert all(set(v) - {"name"} <= allowed for v in pod["volumes"])


def test_every_container_requests_and_is_limited_to_cpu_and_memory() -> None:
    """A namespace whose ResourceQuota covers cpu or memory refuses a pod with a container that
    leaves them out; the operator's defaults fill what the spec does not say."""
    mdep = make(baseModel={"uri": "oci://registry.test/ml/base@sha256:" + "b" * 64})
    pod = builders.deployment(
        mdep,
        "r",
        "stable",
        1,
        {"bot": DIGEST},
        serving_compute=Compute("3", "12Gi"),
        pull_compute=Compute("2", "2Gi"),
        verifier_compute=Compute("50m", "128Mi"),
    )["spec"]["template"]["spec"]
    by_name = {c["name"]: c for c in [*pod["initContainers"], *pod["containers"]]}
    assert set(by_name) == {"pull-base-model", "pull-adapter-bot", "tgi", "verifier"}
    for name, c in by_name.items():
        res = c["resources"]
        assert res["requests"] == res["limits"], name
        assert {"cpu", "memory"} <= set(res["requests"]), name
    assert by_name["pull-adapter-bot"]["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert by_name["verifier"]["resources"]["limits"] == {"cpu": "50m", "memory": "128Mi"}
    # the spec's memory and gpus win; its unset cpu comes from the operator's default
    assert by_name["tgi"]["resources"]["limits"] == {"cpu": "3", "memory": "24Gi", "nvidia.com/gpu": 1}


def test_serving_probes_ask_three_different_questions() -> None:
    tgi = _pod(make(verification={"timeout": "15m"}))["containers"][0]
    startup, ready, live = tgi["startupProbe"], tgi["readinessProbe"], tgi["livenessProbe"]
    # model load may take the whole verification timeout before liveness starts counting
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 15 * 60
    assert ready["httpGet"]["path"] == "/health"
    # liveness never asks /health: a slow, busy server is taken out of rotation, not restarted
    assert "httpGet" not in live and live["tcpSocket"] == {"port": "http"}
    assert (
        live["periodSeconds"] * live["failureThreshold"] > ready["periodSeconds"] * ready["failureThreshold"]
    )
