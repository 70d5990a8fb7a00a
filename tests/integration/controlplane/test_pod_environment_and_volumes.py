"""What a container sees: env from ConfigMaps, Secrets and the downward API; mounted volumes;
its own ServiceAccount token, good for calling the API server; claims that bind and persist."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.testing import Cluster, wait_for
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(90)


def _pod(name: str, code: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "python:3.11", "command": ["python", "-c", code]}
    container |= spec.pop("container", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"role": "probe"}},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def _finished(kube: Kube, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        pod = kube.pod(namespace, name)
        phase = ((pod or {}).get("status") or {}).get("phase")
        return pod if phase in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, f"pod {name} to finish")


def _log(cluster: Cluster, namespace: str, pod: str, container: str = "main") -> str:
    return cluster.container_log(namespace, pod, container).read_text()


def test_pod_reads_a_configmap_key_from_env_and_a_secret_file_from_a_volume(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    kube.create_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"lr": "0.0002"}},
        namespace,
    )
    kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"token": "s3cr3t"},
        },
        namespace,
    )
    code = (
        "import os, json; print(json.dumps({'lr': os.environ['LEARNING_RATE'],"
        " 'token': open('/etc/creds/token').read(), 'name': os.environ['POD_NAME'],"
        " 'ns': os.environ['POD_NAMESPACE'], 'ip': os.environ['POD_IP'], 'role': os.environ['ROLE']}))"
    )
    env = [
        {"name": "LEARNING_RATE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "lr"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "ROLE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['role']"}}},
    ]
    pod = _pod(
        "reader",
        code,
        container={
            "env": env,
            "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds", "readOnly": True}],
        },
        volumes=[{"name": "creds", "secret": {"secretName": "creds"}}],
    )
    kube.create_object(pod, namespace)

    done = _finished(kube, namespace, "reader")

    assert done["status"]["phase"] == "Succeeded", _log(cluster, namespace, "reader")
    seen = json.loads(_log(cluster, namespace, "reader").strip().splitlines()[-1])
    assert seen == {
        "lr": "0.0002",
        "token": "s3cr3t",
        "name": "reader",
        "ns": namespace,
        "ip": done["status"]["podIP"],
        "role": "probe",
    }


def test_env_from_and_a_configmap_volume_expose_every_key(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hparams"},
            "data": {"EPOCHS": "3", "config.yaml": "r: 16\n"},
        },
        namespace,
    )
    kube.create_object(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hub"}, "stringData": {"TOKEN": "hf_x"}},
        namespace,
    )
    code = (
        "import os, json; print(json.dumps({'epochs': os.environ['EPOCHS'], 'token': os.environ['HUB_TOKEN'],"
        " 'expanded': os.environ['SUMMARY'], 'file': open('/config/config.yaml').read()}))"
    )
    container = {
        "envFrom": [{"configMapRef": {"name": "hparams"}}, {"secretRef": {"name": "hub"}, "prefix": "HUB_"}],
        "env": [{"name": "SUMMARY", "value": "epochs=$(EPOCHS) literal=$$(EPOCHS)"}],
        "volumeMounts": [{"name": "config", "mountPath": "/config"}],
    }
    volumes = [
        {
            "name": "config",
            "configMap": {"name": "hparams", "items": [{"key": "config.yaml", "path": "config.yaml"}]},
        }
    ]
    kube.create_object(_pod("env-from", code, container=container, volumes=volumes), namespace)

    done = _finished(kube, namespace, "env-from")

    log = _log(cluster, namespace, "env-from")
    assert done["status"]["phase"] == "Succeeded", log
    assert json.loads(log.strip().splitlines()[-1]) == {
        "epochs": "3",
        "token": "hf_x",
        "expanded": "epochs=3 literal=$(EPOCHS)",
        "file": "r: 16\n",
    }


def test_an_empty_dir_over_tmp_does_not_hide_the_other_volumes(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    # The agent keeps volume sources and the termination log under its state directory (in
    # /tmp when tests run): mounting the emptyDir at /tmp first used to hide them.
    kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"a.txt": "from configmap"},
        },
        namespace,
    )
    code = (
        "open('/tmp/scratch', 'w').write('x'); import os; "
        "print(open('/config/a.txt').read(), sorted(os.listdir('/tmp')))"
    )
    container = {
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}, {"name": "config", "mountPath": "/config"}]
    }
    volumes = [{"name": "scratch", "emptyDir": {}}, {"name": "config", "configMap": {"name": "cfg"}}]
    kube.create_object(_pod("shadowed", code, container=container, volumes=volumes), namespace)
    done = _finished(kube, namespace, "shadowed")
    log = _log(cluster, namespace, "shadowed")
    assert done["status"]["phase"] == "Succeeded", log
    last = log.strip().splitlines()[-1]
    assert last.startswith("from configmap [") and "'scratch'" in last, log


def test_missing_configmap_keeps_the_container_waiting_with_a_config_error(
    kube: Kube, namespace: str
) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "x"}}}]
    kube.create_object(_pod("unconfigured", "print(1)", container={"env": env}), namespace)

    def waiting() -> dict[str, Any] | None:
        statuses = ((kube.pod(namespace, "unconfigured") or {}).get("status") or {}).get(
            "containerStatuses"
        ) or []
        state = statuses[0]["state"].get("waiting") if statuses else None
        return state if state and state["reason"] == "CreateContainerConfigError" else None

    state = wait_for(waiting, 30, "CreateContainerConfigError")
    assert 'configmap "absent"' in state["message"]


def test_pod_calls_the_api_server_with_its_own_service_account_token(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    kube.create_object(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "trainer"}}, namespace
    )
    kube.create_object(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
        namespace,
    )
    kube.create_object(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "trainer-reads-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-pods"},
            "subjects": [{"kind": "ServiceAccount", "name": "trainer", "namespace": namespace}],
        },
        namespace,
    )
    code = """
import os, ssl, json, urllib.request, urllib.error
sa = '/var/run/secrets/kubernetes.io/serviceaccount'
ns = open(f'{sa}/namespace').read()
ctx = ssl.create_default_context(cafile=f'{sa}/ca.crt')
base = f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"
def get(path):
    req = urllib.request.Request(base + path, headers={'Authorization': 'Bearer ' + open(f'{sa}/token').read()})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, None
own_status, own = get(f"/api/v1/namespaces/{ns}/pods/{os.environ['HOSTNAME']}")
secrets_status, _ = get(f"/api/v1/namespaces/{ns}/secrets")
print(json.dumps({'own': own_status, 'sa': own['spec']['serviceAccountName'], 'secrets': secrets_status}))
"""
    kube.create_object(_pod("in-cluster", code, serviceAccountName="trainer"), namespace)

    done = _finished(kube, namespace, "in-cluster")

    log = _log(cluster, namespace, "in-cluster")
    assert done["status"]["phase"] == "Succeeded", log
    assert json.loads(log.strip().splitlines()[-1]) == {"own": 200, "sa": "trainer", "secrets": 403}


def test_data_written_to_a_claim_is_read_by_the_next_pod(
    cluster: Cluster, kube: Kube, namespace: str
) -> None:
    kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "checkpoints"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        namespace,
    )
    volume = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "checkpoints"}}]}
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/ckpt"}]}
    kube.create_object(
        _pod("writer", "open('/ckpt/step-10', 'w').write('weights')", container=mount, **volume), namespace
    )
    assert _finished(kube, namespace, "writer")["status"]["phase"] == "Succeeded", _log(
        cluster, namespace, "writer"
    )

    kube.create_object(
        _pod("resumer", "print(open('/ckpt/step-10').read())", container=mount, **volume), namespace
    )

    assert _finished(kube, namespace, "resumer")["status"]["phase"] == "Succeeded"
    assert "weights" in _log(cluster, namespace, "resumer")
    pvc = kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/checkpoints")
    assert pvc["status"]["phase"] == "Bound"
