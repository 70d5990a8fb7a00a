"""On the real control plane: ModelDeployments on a trickling Prometheus do not stall the operator.

The operator (both controllers, in-process through ``kopf.testing.KopfRunner``) watches two
namespaces with two kopf workers. Three ModelDeployments of ``slow`` are mid-canary at an
analysis step and name a Prometheus the platform allowed that answers one byte every 0.2 s
(a real server on 127.0.0.1). A ModelDeployment then created in ``other`` must be reconciled
within seconds. Before, each analysis held its worker for as long as the server trickled, so
as many such objects as workers stalled every namespace.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kopf.testing import KopfRunner
from prometheus_helpers import Recorder, Trickler

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.clients import kube as kubeclient
from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.modeldeployment import builders
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster, CrdReport
from kubetune.testing.kube import Kube
from kubetune.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(240)
MDEP = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/modeldeployments"
DEADLINE_S = 1.0


def body(name: str, **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "replicas": 1,
            "resources": {"gpus": 0},
            "rollout": {
                "steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}],
                "analysis": {"interval": "30s", "window": "30s", **analysis},
            },
        },
    }


@pytest.fixture
def two_namespaces(cluster: Cluster) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:5]
    names = (cluster.create_namespace(f"slow-{suffix}"), cluster.create_namespace(f"other-{suffix}"))
    yield names
    for name in names:
        cluster.kube.delete(f"/api/v1/namespaces/{name}")


def test_modeldeployments_on_a_trickling_prometheus_do_not_delay_another_namespace(
    cluster: Cluster, kube: Kube, kubetune_crds: CrdReport, two_namespaces: tuple[str, str]
) -> None:
    assert "modeldeployments.kubetune.io" in kubetune_crds.installed
    slow_ns, other_ns = two_namespaces
    trickler = Trickler("headers").__enter__()
    try:
        with Recorder() as platform:
            # the objects of `slow`, mid-canary at the analysis step, as a reconcile left them
            for i in range(3):
                obj = kube.create(MDEP.format(ns=slow_ns), body(f"bot-{i}", prometheusUrl=trickler.url))
                desired = builders.revision(ModelDeployment.model_validate(obj), {})
                status = {
                    "phase": "Progressing",
                    "stableRevision": "0ld0ld0ld0",
                    "canaryRevision": desired,
                    "canaryWeight": 50,
                    "currentStep": 1,
                }
                kube.patch(MDEP.format(ns=slow_ns) + f"/bot-{i}/status", {"status": status})

            settings = Settings(
                prometheus_url=platform.url,
                prometheus_allowed_urls=(trickler.url,),
                prometheus_timeout_s=DEADLINE_S,
            )
            client = kubeclient.Kube.from_environment(str(cluster.kubeconfig))
            op = kubetune_operator.build(settings, client, resync_seconds=1.0)
            op.kopf_settings.execution.max_workers = 2
            args = ["run", "--standalone", "--namespace", slow_ns, "--namespace", other_ns]
            with KopfRunner(args, registry=op.registry, settings=op.kopf_settings, timeout=60) as runner:
                try:
                    wait_for(
                        lambda: trickler.requests >= 2, 30, "the slow objects' analyses to reach the trickler"
                    )
                    created = time.monotonic()
                    kube.create(MDEP.format(ns=other_ns), body("bot"))

                    def reconciled() -> dict[str, Any] | None:
                        obj = kube.get(MDEP.format(ns=other_ns) + "/bot") or {}
                        return obj.get("status") or None

                    status = wait_for(reconciled, 20, f"{other_ns}/bot to be reconciled")
                    waited = time.monotonic() - created
                    assert waited < 15, f"{other_ns}/bot waited {waited:.1f}s"
                    assert status.get("phase") in ("Pending", "Healthy", "Progressing"), status

                    def held(name: str) -> str | None:
                        st = (kube.get(MDEP.format(ns=slow_ns) + f"/{name}") or {}).get("status") or {}
                        return str(st) if "did not answer within" in str(st) else None

                    # the slow objects hold, saying why, and name nothing the server sent
                    wait_for(lambda: held("bot-0"), 30, "bot-0 to hold on the slow Prometheus")
                finally:
                    trickler.__exit__()
            assert runner.exception is None, runner.exception
            client.close()
    finally:
        trickler.__exit__()
