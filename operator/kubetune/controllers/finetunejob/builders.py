"""Pure builders for a FineTuneJob's children: manifests as plain dicts, from spec and settings.

Children (deterministic names, owner references, ``kubetune.io/*`` labels): the spec
ConfigMap, the ServiceAccount/Role/RoleBinding that let the trainer touch only its own
FineTuneJob, the CPU-only preflight Job, the training Job (a batch Job, or for
``numNodes > 1`` an Indexed Job plus a headless Service with torchrun rendezvous env).
No I/O, no clock, no randomness: the same input gives byte-identical output, which the golden
tests pin.
"""

from __future__ import annotations

from typing import Any

import yaml

from kubetune.api.contract import pod, result
from kubetune.api.contract.pod import (
    CACHE_DIR,
    CHECKPOINT_DIR,
    CONFIGMAP_ROOT,
    PVC_ROOT,
    REGISTRY_AUTH_DIR,
    SPEC_FILE,
    SPEC_MOUNT,
    TERMINATION_LOG,
    WORK_DIR,
)
from kubetune.api.v1alpha1 import API_VERSION, FineTuneJob
from kubetune.api.v1alpha1 import names as apinames
from kubetune.clients import download
from kubetune.controllers import ownership
from kubetune.controllers.finetunejob import queueing
from kubetune.controllers.settings import Compute, Settings

Manifest = dict[str, Any]

# Paths inside the pod and the environment the trainer reads: kubetune.api.contract.pod.
TRAINER_UID = 1000

LABEL_JOB = "kubetune.io/finetunejob"
LABEL_COMPONENT = "kubetune.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_KUEUE_QUEUE = queueing.LABEL_QUEUE


def names(job: FineTuneJob) -> dict[str, str]:
    """Every child's name; deterministic so a restarted operator never creates a second one.

    The Jobs and the workers Service also carry a hash of the job's uid
    (:func:`kubetune.api.v1alpha1.names.instance_hash`): a FineTuneJob deleted and re-created
    under the same name gets Jobs of other names. Kubernetes' Job controller keys its pod
    expectations by namespace/name, and a Job re-created under a just-deleted Job's name can
    inherit an unsatisfied expectation and create no pods for up to five minutes
    (kubernetes/kubernetes#131917, #142142); Kueue names its Workloads the same way.
    """
    name = _name(job)
    h = apinames.instance_hash(name, job.metadata.uid)
    return {
        "configmap": f"{name}-spec",
        "serviceaccount": f"{name}-trainer",
        "role": f"{name}-trainer",
        "rolebinding": f"{name}-trainer",
        "preflight": f"{name}-preflight-{h}",
        "train": f"{name}-train-{h}",
        "service": f"{name}-workers-{h}",
    }


def _name(job: FineTuneJob) -> str:
    if not job.metadata.name:
        raise ValueError("FineTuneJob has no metadata.name")
    return job.metadata.name


def labels(job: FineTuneJob, component: str) -> dict[str, str]:
    return {
        LABEL_JOB: _name(job),
        LABEL_COMPONENT: component,
        LABEL_MANAGED_BY: "kubetune",
        "app.kubernetes.io/part-of": "kubetune",
    }


def _meta(job: FineTuneJob, name: str, component: str) -> Manifest:
    return {
        "name": name,
        "namespace": job.metadata.namespace,
        "labels": labels(job, component),
        "ownerReferences": [ownership.owner_reference(job)],
    }


def spec_configmap(job: FineTuneJob) -> Manifest:
    """The validated spec, mounted into every trainer pod as spec.yaml."""
    document = {
        "apiVersion": API_VERSION,
        "kind": "FineTuneJob",
        "metadata": {"name": _name(job), "namespace": job.metadata.namespace, "uid": job.metadata.uid},
        "spec": job.spec.to_wire(),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(job, names(job)["configmap"], "spec"),
        "data": {"spec.yaml": yaml.safe_dump(document, sort_keys=True)},
    }


def service_account(job: FineTuneJob) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(job, names(job)["serviceaccount"], "rbac"),
        "automountServiceAccountToken": True,
    }


def role(job: FineTuneJob) -> Manifest:
    """Read its own FineTuneJob and patch its status; nothing else (resourceNames)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(job, names(job)["role"], "rbac"),
        "rules": [
            {
                "apiGroups": ["kubetune.io"],
                "resources": ["finetunejobs"],
                "resourceNames": [_name(job)],
                "verbs": ["get"],
            },
            {
                "apiGroups": ["kubetune.io"],
                "resources": ["finetunejobs/status"],
                "resourceNames": [_name(job)],
                "verbs": ["get", "patch"],
            },
        ],
    }


def role_binding(job: FineTuneJob) -> Manifest:
    n = names(job)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(job, n["rolebinding"], "rbac"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": n["role"]},
        "subjects": [
            {"kind": "ServiceAccount", "name": n["serviceaccount"], "namespace": job.metadata.namespace}
        ],
    }


def _security_context() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": TRAINER_UID,
        "runAsGroup": TRAINER_UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(job: FineTuneJob, settings: Settings) -> list[Manifest]:
    env: list[Manifest] = [
        {"name": pod.JOB_NAME, "value": _name(job)},
        # the trainer refuses a mounted spec written for another job (a ConfigMap not ours)
        {"name": pod.JOB_UID, "value": job.metadata.uid or ""},
        {"name": pod.NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "HOME", "value": WORK_DIR},
        # downloads: on the shared cache claim when the operator has one, else on the pod's volume
        {"name": "HF_HOME", "value": f"{_cache_root(settings)}/hf"},
        {"name": pod.SOURCES_DIR, "value": f"{_cache_root(settings)}/sources"},
        # Scratch space on the writable work volume (the root filesystem is read-only). Not a
        # separate emptyDir at /tmp: the test node agent's bind mounts live under the host's
        # /tmp, and a mount there would hide the volumes mounted after it.
        {"name": "TMPDIR", "value": WORK_DIR},
        {"name": pod.PVC_ROOT_ENV, "value": PVC_ROOT},
        {"name": pod.CONFIGMAP_ROOT_ENV, "value": CONFIGMAP_ROOT},
    ]
    secrets = [
        ("HF_TOKEN", job.spec.base_model.secret_ref),
        (pod.DATASET_TOKEN, job.spec.dataset.secret_ref),
    ]
    for var, ref in secrets:
        if ref is not None:
            env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    registry = settings.registry_target(job.spec.output.repository, job.metadata.namespace, _name(job))
    if registry:
        env.append({"name": pod.REGISTRY, "value": registry})
    if settings.insecure_registries:  # also for oci:// base models and datasets on those hosts
        env.append({"name": pod.REGISTRY_INSECURE, "value": ",".join(settings.insecure_registries)})
    if job.spec.output.secret_ref is not None:
        env.append({"name": "DOCKER_CONFIG", "value": REGISTRY_AUTH_DIR})
    return env


def _cache_root(settings: Settings) -> str:
    return CACHE_DIR if settings.cache_claim else WORK_DIR


def _volumes(job: FineTuneJob, settings: Settings) -> tuple[list[Manifest], list[Manifest]]:
    n = names(job)
    volumes: list[Manifest] = [
        {"name": "spec", "configMap": {"name": n["configmap"]}},
        {"name": "work", "emptyDir": {}},
    ]
    mounts: list[Manifest] = [
        {"name": "spec", "mountPath": SPEC_MOUNT, "readOnly": True},
        {"name": "work", "mountPath": WORK_DIR},
    ]
    claim = job.spec.checkpoint_storage.claim_name
    volumes.append(
        {"name": "checkpoints", "persistentVolumeClaim": {"claimName": claim}}
        if claim
        else {"name": "checkpoints", "emptyDir": {}}
    )
    checkpoint_mount: Manifest = {"name": "checkpoints", "mountPath": CHECKPOINT_DIR}
    if claim:
        # one directory per job, so jobs sharing a claim never resume from each other's steps
        checkpoint_mount["subPath"] = _name(job)
    mounts.append(checkpoint_mount)
    for i, source in enumerate(source_claims(job)):
        volumes.append(
            {"name": f"source-{i}", "persistentVolumeClaim": {"claimName": source, "readOnly": True}}
        )
        mounts.append({"name": f"source-{i}", "mountPath": f"{PVC_ROOT}/{source}", "readOnly": True})
    if settings.cache_claim:
        volumes.append({"name": "cache", "persistentVolumeClaim": {"claimName": settings.cache_claim}})
        mounts.append({"name": "cache", "mountPath": CACHE_DIR})
    for i, source in enumerate(source_configmaps(job)):
        volumes.append({"name": f"configmap-{i}", "configMap": {"name": source}})
        mounts.append({"name": f"configmap-{i}", "mountPath": f"{CONFIGMAP_ROOT}/{source}", "readOnly": True})
    ref = job.spec.output.secret_ref
    if ref is not None:
        volumes.append(
            {
                "name": "registry-auth",
                "secret": {"secretName": ref.name, "items": [{"key": ref.key, "path": "config.json"}]},
            }
        )
        mounts.append({"name": "registry-auth", "mountPath": REGISTRY_AUTH_DIR, "readOnly": True})
    return volumes, mounts


def _sources_with(job: FineTuneJob, scheme: str) -> list[str]:
    uris = [job.spec.base_model.uri, job.spec.dataset.uri, job.spec.dataset.validation_uri or ""]
    return sorted({uri[len(scheme) :].split("/", 1)[0] for uri in uris if uri.startswith(scheme)})


def source_claims(job: FineTuneJob) -> list[str]:
    """Claims named by ``pvc://claim/path`` model and dataset URIs, mounted read-only under PVC_ROOT."""
    return _sources_with(job, "pvc://")


def source_configmaps(job: FineTuneJob) -> list[str]:
    """ConfigMaps named by ``configmap://name/key`` dataset URIs, mounted under CONFIGMAP_ROOT."""
    return _sources_with(job, "configmap://")


def _scheduling(job: FineTuneJob) -> Manifest:
    res = job.spec.resources
    selector = dict(res.node_selector)
    if res.gpu_product:
        selector["nvidia.com/gpu.product"] = res.gpu_product
    out: Manifest = {}
    if selector:
        out["nodeSelector"] = dict(sorted(selector.items()))
    if res.tolerations:
        out["tolerations"] = [t.to_wire() for t in res.tolerations]
    if res.priority_class_name:
        out["priorityClassName"] = res.priority_class_name
    return out


def _trainer_resources(job: FineTuneJob, settings: Settings) -> Manifest:
    """Requests equal to limits: the spec's cpu and memory, else the operator's defaults, so a
    namespace whose ResourceQuota covers cpu or memory admits the pods (it refuses a pod that
    leaves them out)."""
    res = job.spec.resources
    gpus: dict[str, int | str] = {"nvidia.com/gpu": res.gpus_per_node} if res.gpus_per_node else {}
    compute = Compute(
        res.cpu if res.cpu is not None else settings.trainer_cpu,
        res.memory if res.memory is not None else settings.trainer_memory,
    )
    return compute.manifest(gpus)


def _pod_spec(job: FineTuneJob, settings: Settings, container: Manifest, *, restart: str) -> Manifest:
    volumes, mounts = _volumes(job, settings)
    container = {
        **container,
        "image": job.spec.image or settings.trainer_image,
        "imagePullPolicy": settings.image_pull_policy,
        "workingDir": WORK_DIR,
        "env": _env(job, settings) + container.get("env", []),
        "volumeMounts": mounts,
        "securityContext": _security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "serviceAccountName": names(job)["serviceaccount"],
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": TRAINER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }


def preflight_job(job: FineTuneJob, settings: Settings) -> Manifest:
    """The CPU-only preflight: never requests a GPU, whatever the spec asks for training."""
    container: Manifest = {
        "name": "preflight",
        "command": ["python", "-m", "kubetune.trainer"],
        "args": [
            "preflight",
            "--spec",
            SPEC_FILE,
            "--output",
            f"{WORK_DIR}/preflight",
            "--termination-log",
            TERMINATION_LOG,
        ],
        "resources": Compute(settings.preflight_cpu, settings.preflight_memory).manifest(),
    }
    template = {
        "metadata": {"labels": labels(job, "preflight")},
        "spec": _pod_spec(job, settings, container, restart="Never"),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(job, names(job)["preflight"], "preflight"),
        "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400, "template": template},
    }


def training_job(job: FineTuneJob, settings: Settings) -> Manifest:
    """The training Job: one pod, or an Indexed Job running torchrun across numNodes pods.

    restartPolicy OnFailure keeps the pod (and an emptyDir checkpoint volume) across container
    restarts, so every retry resumes from the last complete checkpoint; backoffLimit bounds them.
    """
    n = names(job)
    nodes = job.spec.resources.num_nodes
    trainer_args = [
        "train",
        "--spec",
        SPEC_FILE,
        "--output",
        f"{WORK_DIR}/output",
        "--checkpoint-dir",
        CHECKPOINT_DIR,
        "--keep-checkpoints",
        str(settings.keep_checkpoints),
        "--termination-log",
        TERMINATION_LOG,
    ]
    container: Manifest = {"name": "trainer", "resources": _trainer_resources(job, settings)}
    queue = queueing.queue_name(job, settings)
    # With a queue, Kueue owns spec.suspend: the Job is created suspended and Kueue unsuspends
    # it when it admits the whole Job (every pod of an Indexed Job at once).
    spec: Manifest = {"backoffLimit": job.spec.backoff_limit, "suspend": job.spec.suspend or bool(queue)}
    if job.spec.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = job.spec.active_deadline_seconds
    pod_meta: Manifest = {"labels": labels(job, "trainer")}
    if nodes == 1:
        container["command"] = ["python", "-m", "kubetune.trainer"]
        container["args"] = trainer_args
        pod = _pod_spec(job, settings, container, restart="OnFailure")
    else:
        gpus = max(job.spec.resources.gpus_per_node, 1)
        # torchrun through the trainer's launcher, which keeps the trainer's exit codes (gate
        # not met, stopped after a checkpoint) where torchrun would exit 1 for any of them
        container["command"] = ["python", "-m", "kubetune.trainer.distributed"]
        container["args"] = [
            f"--nnodes={nodes}",
            f"--nproc-per-node={gpus}",
            "--node-rank=$(JOB_COMPLETION_INDEX)",
            "--rdzv-backend=static",
            "--master-addr=$(MASTER_ADDR)",
            "--master-port=$(MASTER_PORT)",
            "-m",
            "kubetune.trainer",
            *trainer_args,
        ]
        # The Job controller sets JOB_COMPLETION_INDEX in every Indexed Job pod.
        container["env"] = [
            {"name": "MASTER_ADDR", "value": f"{n['train']}-0.{n['service']}"},
            {"name": "MASTER_PORT", "value": str(settings.torchrun_port)},
            {"name": "WORLD_SIZE", "value": str(nodes * gpus)},
            {"name": "NNODES", "value": str(nodes)},
        ]
        container["ports"] = [{"name": "rendezvous", "containerPort": settings.torchrun_port}]
        pod = _pod_spec(job, settings, container, restart="OnFailure")
        pod["subdomain"] = n["service"]
        spec.update({"completionMode": "Indexed", "completions": nodes, "parallelism": nodes})
    pod.update(_scheduling(job))
    spec["template"] = {"metadata": pod_meta, "spec": pod}
    meta = _meta(job, n["train"], "trainer")
    if queue:
        meta["labels"][LABEL_KUEUE_QUEUE] = queue
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def workers_service(job: FineTuneJob, settings: Settings) -> Manifest:
    """Headless Service giving each Indexed Job pod a stable DNS name for torchrun rendezvous."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(job, names(job)["service"], "trainer"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {LABEL_JOB: _name(job), LABEL_COMPONENT: "trainer"},
            "ports": [{"name": "rendezvous", "port": settings.torchrun_port, "targetPort": "rendezvous"}],
        },
    }


def _shown_uri(uri: str) -> str:
    return download.redact(uri) if uri.startswith(("https://", "http://")) else uri


def adapter_name(job: FineTuneJob) -> str:
    """The Adapter a successful job registers is named after the job."""
    return _name(job)


def adapter(job: FineTuneJob, ref: str, run: result.RunResult | None, trainer_image: str) -> Manifest:
    """The Adapter recording a registered result; not owned by the job, so it outlives it.

    ``run`` is the trainer's result.json (lineage, metrics, gate). Raises ValueError when there
    is none or its lineage lacks what the Adapter must pin (the dataset digest).
    """
    sha256 = result.dataset_sha256(run) if run is not None else None
    if run is None or sha256 is None:
        raise ValueError("the trainer's result has no lineage.dataset.sha256; cannot register an Adapter")
    metrics = [m.to_wire() for m in run.metrics]
    gate_spec = job.spec.evaluation.gate
    primary = gate_spec.metric if gate_spec is not None else (run.metrics[0].name if run.metrics else "loss")
    value = next((m.tuned for m in run.metrics if m.name == primary), 0.0)
    base = job.spec.base_model.to_wire()
    revision = result.base_revision(run)
    if revision and not base.get("revision"):
        base["revision"] = revision
    method_block = job.spec.method.to_wire()
    method_config = {k: v for k, v in method_block.items() if k != "type"}
    if result.preference(run) is not None:
        method_config["preference"] = result.preference(run)  # DPO/IPO/ORPO and beta, as trained
    return {
        "apiVersion": API_VERSION,
        "kind": "Adapter",
        "metadata": {
            "name": adapter_name(job),
            "namespace": job.metadata.namespace,
            "labels": {**labels(job, "adapter"), "kubetune.io/method": job.spec.method.type},
        },
        "spec": {
            "ref": ref,
            "baseModel": base,
            "method": job.spec.method.type,
            "methodConfig": method_config,
            "hyperparameters": job.spec.hyperparameters.to_wire(),
            # as the trainer's lineage shows it: a presigned URL's signature is a secret
            "dataset": {"uri": _shown_uri(job.spec.dataset.uri), "sha256": sha256},
            "trainerImage": job.spec.image or trainer_image,
            "seed": job.spec.hyperparameters.seed,
            "scorecard": {
                "primaryMetric": primary,
                "primaryValue": float(value),
                "gatePassed": run.gate.passed if run.gate is not None else True,
                "metrics": metrics,
            },
            "sourceJob": {"name": _name(job), "namespace": job.metadata.namespace, "uid": job.metadata.uid},
        },
    }


def children(job: FineTuneJob, settings: Settings) -> list[Manifest]:
    """Every child that exists before training starts, in creation order."""
    out = [
        spec_configmap(job),
        service_account(job),
        role(job),
        role_binding(job),
        preflight_job(job, settings),
    ]
    if job.spec.resources.num_nodes > 1:
        out.append(workers_service(job, settings))
    return out
