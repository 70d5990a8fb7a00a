"""Pure builders for a ModelDeployment's children: one Deployment per revision, Services, route.

A revision is a hash over the serving-relevant spec (base model, adapters resolved to digest
references, runtime, resources, verification); a new Adapter digest therefore starts a canary,
while scaling replicas does not. Each revision's Deployment runs the engine's server
(:mod:`.engines`: TGI or vLLM, their arguments, environment and probes), fed by init
containers that pull the digest-pinned artifacts, and guarded by a startup probe on a verifier
sidecar that sends the golden prompt with each adapter and fails while an answer equals the
base model's. Traffic follows the canary weight by replica ratio behind one Service, or by
Gateway API HTTPRoute weights. No I/O, clock or randomness.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from kubetune.api.contract.pod import PVC_ROOT, REGISTRY_AUTH_DIR, REGISTRY_INSECURE
from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.api.v1alpha1.base import parse_duration
from kubetune.api.v1alpha1.modeldeployment import DEFAULT_TGI_MAX_CONCURRENT
from kubetune.controllers import ownership
from kubetune.controllers.modeldeployment import engines
from kubetune.controllers.settings import (
    DEFAULT_KUBETUNE_IMAGE,
    DEFAULT_PULL,
    DEFAULT_SERVING,
    DEFAULT_VERIFIER,
    Compute,
)

Manifest = dict[str, Any]
Track = Literal["stable", "canary"]

MODELS_DIR = "/models"
ADAPTERS_DIR = "/adapters"
# The UID and GID the pods run as: the restricted Pod Security Standard forbids root, and the
# TGI image's own user is root, so runAsNonRoot alone would keep it from starting.
RUN_AS = 1000
VERIFIER_PORT = 8090
STARTUP_PERIOD_SECONDS = 5

LABEL_MDEP = "kubetune.io/modeldeployment"
LABEL_REVISION = "kubetune.io/revision"
LABEL_TRACK = "kubetune.io/track"
ANNOTATION_ADAPTERS = "kubetune.io/adapters"


def _name(mdep: ModelDeployment) -> str:
    if not mdep.metadata.name:
        raise ValueError("ModelDeployment has no metadata.name")
    return mdep.metadata.name


def revision(mdep: ModelDeployment, adapter_refs: dict[str, str]) -> str:
    """10 hex characters identifying what is served; ``adapter_refs`` maps adapter name -> digest ref."""
    spec = mdep.spec
    missing = [a.name for a in spec.adapters if a.name not in adapter_refs and a.ref is None]
    if missing:
        raise ValueError(f"adapters {missing} have no resolved reference")
    served = {
        "baseModel": spec.base_model.to_wire(),
        "adapters": [{"name": a.name, "ref": a.ref or adapter_refs[a.name]} for a in spec.adapters],
        "runtime": _served_runtime(mdep),
        "resources": spec.resources.to_wire(),
        "verification": spec.verification.to_wire(),
    }
    if spec.registry_secret is not None:
        # part of the pods (a mount), and a canary that failed to pull must be retried once the
        # credentials are added; absent, old revisions keep their hash
        served["registrySecret"] = spec.registry_secret.to_wire()
    blob = json.dumps(served, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def _served_runtime(mdep: ModelDeployment) -> dict[str, Any]:
    """The runtime as it is served, in the shape revisions had before engines existed for TGI
    (image and maxConcurrentRequests filled in, no engine), so upgrading the operator does not
    give every TGI deployment a new revision and a canary."""
    rt = mdep.spec.runtime
    out = rt.to_wire()
    out["image"] = rt.resolved_image
    if rt.engine == "tgi":
        del out["engine"]
        out["maxConcurrentRequests"] = rt.max_concurrent_requests or DEFAULT_TGI_MAX_CONCURRENT
    return out


def replicas(total: int, weight: int, *, gateway: bool) -> tuple[int, int]:
    """(stable, canary) replica counts for a canary ``weight`` in percent.

    By replica ratio, the pods share one Service, so the split approximates the weight (at
    least one pod on each side while both take traffic). With a Gateway the route carries the
    weight, so stable stays at full size (warm for a rollback) and the canary gets its share.
    """
    if weight <= 0:
        return total, 0
    canary = max(1, math.ceil(total * weight / 100))
    if gateway:
        return total, canary
    if weight >= 100:
        return 0, max(total, 1)
    canary = min(canary, max(total - 1, 1))
    stable = max(total - canary, 1)
    return stable, canary


def labels(mdep: ModelDeployment, rev: str | None = None, track: Track | None = None) -> dict[str, str]:
    out = {
        LABEL_MDEP: _name(mdep),
        "app.kubernetes.io/managed-by": "kubetune",
        "app.kubernetes.io/part-of": "kubetune",
    }
    if rev:
        out[LABEL_REVISION] = rev
    if track:
        out[LABEL_TRACK] = track
    return out


def _meta(mdep: ModelDeployment, name: str, lab: dict[str, str]) -> Manifest:
    return {
        "name": name,
        "namespace": mdep.metadata.namespace,
        "labels": lab,
        "ownerReferences": [ownership.owner_reference(mdep)],
    }


def _model_id(mdep: ModelDeployment) -> tuple[str, str | None, list[Manifest], str | None]:
    """The model the server loads (a hub id or a path in the pod) and its hub revision, the init
    container that fetches the base model when the server cannot, and the PersistentVolumeClaim
    the model is read from (``pvc://claim/path``)."""
    uri = mdep.spec.base_model.uri
    if uri.startswith("hf://"):
        ident, _, rev = uri.removeprefix("hf://").partition("@")
        return ident, rev or None, [], None
    if uri.startswith("oci://"):
        target = f"{MODELS_DIR}/base"
        return target, None, [_pull(mdep, "pull-base-model", uri, target)], None
    if uri.startswith("pvc://"):
        claim, _, path = uri.removeprefix("pvc://").partition("/")
        return f"{PVC_ROOT}/{claim}/{path}".rstrip("/"), None, [], claim
    return uri, None, [], None


def _pull(mdep: ModelDeployment, name: str, ref: str, target: str) -> Manifest:
    env: list[Manifest] = []
    mounts: list[Manifest] = [
        {"name": "models", "mountPath": MODELS_DIR},
        {"name": "adapters", "mountPath": ADAPTERS_DIR},
    ]
    if mdep.spec.registry_secret is not None:
        env.append({"name": "DOCKER_CONFIG", "value": REGISTRY_AUTH_DIR})
        mounts.append({"name": "registry-auth", "mountPath": REGISTRY_AUTH_DIR, "readOnly": True})
    return {
        "name": name,
        "image": DEFAULT_KUBETUNE_IMAGE,
        "command": ["kubetune", "registry", "pull", ref, target],
        "env": env,
        "volumeMounts": mounts,
        # kubetune's own containers write only to their volumes (a pull stages inside its target)
        "securityContext": _security_context(read_only_root=True),
    }


def _pod_security_context() -> Manifest:
    """Pod-level settings of the ``restricted`` Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _security_context(*, read_only_root: bool) -> Manifest:
    """Container-level settings of the ``restricted`` Pod Security Standard.

    TGI keeps a writable root filesystem: its launcher puts the shards' sockets in /tmp, and
    an emptyDir over /tmp is not an option on every runtime (docs/modeldeployment.md).
    """
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment(
    mdep: ModelDeployment,
    rev: str,
    track: Track,
    count: int,
    adapter_refs: dict[str, str],
    *,
    kubetune_image: str = DEFAULT_KUBETUNE_IMAGE,
    insecure_registries: Sequence[str] = (),
    adapter_resources: dict[str, str] | None = None,
    serving_compute: Compute = DEFAULT_SERVING,
    pull_compute: Compute = DEFAULT_PULL,
    verifier_compute: Compute = DEFAULT_VERIFIER,
    quantization: str | None = None,
) -> Manifest:
    """The Deployment serving one revision.

    ``adapter_resources`` maps adapter name -> the Adapter resource it came from; it is recorded
    on the Deployment so the controller knows which Adapters a revision serves after the spec
    has moved on. ``serving_compute`` is the cpu and memory of the server container where
    ``spec.resources`` leaves them unset; ``pull_compute`` and ``verifier_compute`` those of
    the pull init containers and the verifier sidecar (the operator's settings).
    ``quantization`` is the server's quantization (TGI ``--quantize``, vLLM ``--quantization``);
    unset, ``spec.runtime.quantize``. Engine-specific parts come from :mod:`.engines`.
    """
    spec = mdep.spec
    rt = spec.runtime
    engine = engines.get(rt.engine)
    model, model_revision, inits, claim = _model_id(mdep)
    lora: list[tuple[str, str]] = []
    for a in spec.adapters:
        target = f"{ADAPTERS_DIR}/{a.name}"
        inits.append(_pull(mdep, f"pull-adapter-{a.name}", a.ref or adapter_refs[a.name], target))
        lora.append((a.name, target))
    served = engines.Served(
        model, model_revision, lora, quantization if quantization is not None else rt.quantize
    )
    for init in engine.init_containers(mdep, served):
        # like the pulls: kubetune's own containers write only to their volumes
        inits.append({**init, "securityContext": _security_context(read_only_root=True)})
    for init in inits:
        init["image"] = kubetune_image
        init["resources"] = pull_compute.manifest()
        if insecure_registries:  # plain HTTP for these hosts only
            init["env"].append({"name": REGISTRY_INSECURE, "value": ",".join(insecure_registries)})
    env: list[Manifest] = [
        {"name": "HF_HOME", "value": f"{MODELS_DIR}/hf"},
        # UID 1000 has no home in the TGI image; caches under ~ (outlines, triton) go to a volume
        {"name": "HOME", "value": f"{MODELS_DIR}/home"},
    ]
    env += engine.env(mdep, served)
    if spec.base_model.secret_ref is not None:
        ref = spec.base_model.secret_ref
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    res = spec.resources
    gpus: dict[str, int | str] = {"nvidia.com/gpu": res.gpus} if res.gpus else {}
    compute = Compute(
        res.cpu if res.cpu is not None else serving_compute.cpu,
        res.memory if res.memory is not None else serving_compute.memory,
    )
    mounts: list[Manifest] = [
        {"name": "models", "mountPath": MODELS_DIR},
        {"name": "adapters", "mountPath": ADAPTERS_DIR},
    ]
    volumes: list[Manifest] = [{"name": "models", "emptyDir": {}}, {"name": "adapters", "emptyDir": {}}]
    if spec.registry_secret is not None:
        auth = spec.registry_secret
        volumes.append(
            {
                "name": "registry-auth",
                "secret": {"secretName": auth.name, "items": [{"key": auth.key, "path": "config.json"}]},
            }
        )
    if claim is not None:
        mounts.append({"name": "base-model", "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": True})
        volumes.append(
            {"name": "base-model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
    server: Manifest = {"name": engine.container, "image": rt.resolved_image}
    command = engine.command(mdep)
    if command is not None:
        server["command"] = command
    server |= {
        "args": engine.args(mdep, served),
        "env": env,
        "ports": [{"name": "http", "containerPort": rt.port}],
        "volumeMounts": mounts,
        "resources": compute.manifest(gpus),
        **engine.probes(startup_failures(mdep)),
        "securityContext": _security_context(read_only_root=False),
    }
    containers = [server]
    if spec.verification.enabled and spec.adapters:
        # TGI answers with the base model for an adapter it failed to load; the verifier makes
        # the pod fail its startup probe instead.
        containers.append(
            {
                "name": "verifier",
                "image": kubetune_image,
                "command": ["kubetune", "verify-adapters"],
                "args": [
                    "--url",
                    f"http://127.0.0.1:{rt.port}",
                    "--listen",
                    f"0.0.0.0:{VERIFIER_PORT}",
                    "--prompt",
                    spec.verification.prompt,
                    "--max-new-tokens",
                    str(spec.verification.max_new_tokens),
                    "--adapters",
                    ",".join(a.name for a in spec.adapters),
                    *engine.verifier_args(mdep),
                ],
                "ports": [{"name": "verifier", "containerPort": VERIFIER_PORT}],
                # Fails the pod once verification.timeout passes without a verified answer; the
                # sidecar writes its last reason to the termination message for the controller.
                "startupProbe": {
                    "httpGet": {"path": "/verified", "port": "verifier"},
                    "periodSeconds": STARTUP_PERIOD_SECONDS,
                    "failureThreshold": startup_failures(mdep),
                },
                "terminationMessagePolicy": "File",
                "resources": verifier_compute.manifest(),
                "securityContext": _security_context(read_only_root=True),
            }
        )
    # Pods carry no track label: a canary's pods become the stable ones on promotion without a
    # restart, so the track lives on the Deployment (patched) and Services select by revision.
    pod_labels = labels(mdep, rev)
    pod: Manifest = {
        "securityContext": _pod_security_context(),
        "initContainers": inits,
        "containers": containers,
        "volumes": volumes,
        "terminationGracePeriodSeconds": 90,
    }
    # replicas of a revision on different nodes when the scheduler can: one drain or node
    # failure then takes one replica, not all (soft: GPU nodes are scarce, packing wins)
    pod["affinity"] = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {LABEL_MDEP: _name(mdep), LABEL_REVISION: rev}},
                    },
                }
            ]
        }
    }
    if res.node_selector:
        pod["nodeSelector"] = dict(sorted(res.node_selector.items()))
    if res.tolerations:
        pod["tolerations"] = [t.to_wire() for t in res.tolerations]
    meta = _meta(mdep, deployment_name(mdep, rev), labels(mdep, rev, track))
    if adapter_resources:
        meta["annotations"] = {ANNOTATION_ADAPTERS: json.dumps(adapter_resources, sort_keys=True)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": count,
            "selector": {"matchLabels": {LABEL_MDEP: _name(mdep), LABEL_REVISION: rev}},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
    }


def deployment_name(mdep: ModelDeployment, rev: str) -> str:
    return f"{_name(mdep)}-{rev}"


def startup_failures(mdep: ModelDeployment) -> int:
    """Startup-probe failures allowed: ``verification.timeout`` in probe periods (at least 2)."""
    return max(2, math.ceil(parse_duration(mdep.spec.verification.timeout) / STARTUP_PERIOD_SECONDS))


def service(mdep: ModelDeployment, track: Track | None = None, rev: str | None = None) -> Manifest:
    """The Service clients use (``track=None``: every pod, for replica-ratio routing), or one per
    track for Gateway API backends, selecting the pods of revision ``rev``."""
    name = _name(mdep) if track is None else f"{_name(mdep)}-{track}"
    selector = {LABEL_MDEP: _name(mdep)}
    if track is not None:
        if not rev:
            raise ValueError(f"the {track} Service needs the revision it selects")
        selector[LABEL_REVISION] = rev
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(mdep, name, labels(mdep)),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def pod_disruption_budget(mdep: ModelDeployment) -> Manifest:
    """Voluntary disruptions (node drains, cluster upgrades) evict the serving pods one at a
    time, whatever their revision: the others keep answering while it starts elsewhere."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(mdep, _name(mdep), labels(mdep)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {LABEL_MDEP: _name(mdep)}}},
    }


def http_route(mdep: ModelDeployment, weight: int) -> Manifest:
    """A Gateway API HTTPRoute splitting traffic by weight; an A/B header always picks the canary."""
    gw = mdep.spec.rollout.traffic_routing.gateway
    if gw is None:
        raise ValueError("spec.rollout.trafficRouting.gateway is not set")
    name = _name(mdep)
    backends = [
        {"name": f"{name}-stable", "port": 80, "weight": 100 - weight},
        {"name": f"{name}-canary", "port": 80, "weight": weight},
    ]
    rules: list[Manifest] = []
    if gw.header is not None:
        rules.append(
            {
                "matches": [
                    {"headers": [{"type": "Exact", "name": gw.header.name, "value": gw.header.value}]}
                ],
                "backendRefs": [{"name": f"{name}-canary", "port": 80}],
            }
        )
    rules.append({"backendRefs": backends})
    spec: Manifest = {"parentRefs": [ref.to_wire() for ref in gw.parent_refs], "rules": rules}
    if gw.hostnames:
        spec["hostnames"] = gw.hostnames
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(mdep, name, labels(mdep)),
        "spec": spec,
    }
