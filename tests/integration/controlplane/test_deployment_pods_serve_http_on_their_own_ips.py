"""Replicas run side by side on one port, each in its own network namespace with its own IP."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from kubetune.testing import wait_for
from kubetune.testing.kube import Kube

pytestmark = pytest.mark.timeout(90)

SERVER = """
import http.server, os, socket
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = os.path.exists(os.environ.get('READY_FILE', '/nonexistent')) or 'READY_FILE' not in os.environ
        body = f"hello from {socket.gethostname()}".encode()
        self.send_response(200 if ready or self.path != '/healthz' else 503)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(('0.0.0.0', 8080), Handler).serve_forever()
"""


def _container(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "web",
        "image": "python:3.11",
        "command": ["python", "-c", SERVER],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        **(extra or {}),
    }


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_deployment_with_two_replicas_serves_http_from_two_distinct_pod_ips(
    kube: Kube, namespace: str
) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [_container()]},
            },
        },
    }
    kube.create_object(deployment, namespace)

    def available() -> bool:
        status = kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web").get("status") or {}
        return status.get("availableReplicas") == 2

    wait_for(available, 60, "deployment web to have 2 available replicas")

    pods = kube.pods(namespace, "app=web")
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert len(ips) == 2 and len(set(ips.values())) == 2, ips
    for name, ip in ips.items():
        assert _get(f"http://{ip}:8080/") == f"hello from {name}"


def test_pod_becomes_ready_only_after_its_http_readiness_probe_passes(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gated"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "flags", "hostPath": {"path": str(tmp_path)}}],
            "containers": [
                _container(
                    {
                        "env": [{"name": "READY_FILE", "value": "/flags/ready"}],
                        "volumeMounts": [{"name": "flags", "mountPath": "/flags"}],
                    }
                )
            ],
        },
    }
    kube.create_object(pod, namespace)

    def unhealthy() -> bool:
        return any(e["reason"] == "Unhealthy" for e in kube.events(namespace, "gated"))

    wait_for(unhealthy, 30, "a failed readiness probe on pod gated")
    status = kube.get(f"/api/v1/namespaces/{namespace}/pods/gated")["status"]
    assert status["phase"] == "Running"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "False"
    assert status["containerStatuses"][0]["ready"] is False

    (tmp_path / "ready").touch()

    def ready() -> bool:
        conds = kube.get(f"/api/v1/namespaces/{namespace}/pods/gated")["status"]["conditions"]
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    wait_for(ready, 15, "pod gated to become Ready after its probe passes")
