"""Adapters are never lost or overwritten on a shared registry.

The operator runs as the chart configures it: a default registry *prefix* (``registry.default``),
no ``spec.output.repository`` in the jobs. Two namespaces run a job of the same name; one is
deleted and re-created. Every run that registers an Adapter pins its own digest, and every
digest is still pullable at the end. A re-created job whose Adapter name is still taken stops
before it trains, naming the old Adapter; a job that would push to a path is refused by the API
server (on a cluster the path would be inside the pod).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftj_helpers import FTJ, child_names, condition, dump, lora_job, make_claim, phase_is
from kopf.testing import KopfRunner

from kubetune import registry
from kubetune.clients import kube as kubeclient
from kubetune.controllers import operator as kubetune_operator
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster, CrdReport
from kubetune.testing.kube import ApiException, Kube
from kubetune.testing.waiting import wait_for

ADAPTERS = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/adapters"
INSECURE = registry.Options(insecure=True)


@pytest.fixture
def second_namespace(cluster: Cluster, namespace: str, tiny_assets: Path, kube: Kube) -> Iterator[str]:
    """Another team's namespace with the same ``data`` claim contents."""
    name = cluster.create_namespace(f"{namespace[:50]}-b")
    path = make_claim(kube, name, "data")
    shutil.copytree(tiny_assets, path, dirs_exist_ok=True)
    yield name
    kube.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def two_namespace_operator(
    cluster: Cluster,
    kubetune_crds: CrdReport,
    namespace: str,
    second_namespace: str,
    operator_settings: Settings,
) -> Iterator[Settings]:
    kube = kubeclient.Kube.from_environment(str(cluster.kubeconfig))
    op = kubetune_operator.build(operator_settings, kube, resync_seconds=1.0)
    args = ["run", "--standalone", "--namespace", namespace, "--namespace", second_namespace]
    with KopfRunner(args, registry=op.registry, settings=op.kopf_settings, timeout=60) as runner:
        yield operator_settings
    assert runner.exception is None, runner.exception
    kube.close()


def _finished(kube: Kube, ns: str, name: str = "bot") -> dict[str, object]:
    return wait_for(lambda: phase_is(kube, ns, name, "Succeeded", "Failed"), 240, f"{ns}/{name} finished")


def _adapter_ref(kube: Kube, ns: str) -> str:
    adapter = wait_for(lambda: kube.get_or_none(ADAPTERS.format(ns=ns) + "/bot"), 30, f"Adapter {ns}/bot")
    return str(adapter["spec"]["ref"])


def test_same_named_jobs_in_two_namespaces_and_a_recreated_job_never_share_or_lose_a_digest(
    kube: Kube,
    namespace: str,
    second_namespace: str,
    data_pvc: Path,
    adapter_registry: str,
    two_namespace_operator: Settings,
    tmp_path: Path,
) -> None:
    prefix = two_namespace_operator.default_registry
    assert prefix == f"{adapter_registry}/adapters"
    a, b = namespace, second_namespace
    for ns in (a, b):
        kube.create(FTJ.format(ns=ns), lora_job("bot"))
    refs: dict[str, str] = {}
    for ns in (a, b):
        obj = _finished(kube, ns)
        assert obj["status"]["phase"] == "Succeeded", dump(obj)  # type: ignore[index]
        refs[ns] = _adapter_ref(kube, ns)
        # the default target is <prefix>/<namespace>/<job name>
        assert re.fullmatch(re.escape(f"{prefix}/{ns}/bot") + r"@sha256:[0-9a-f]{64}", refs[ns]), refs[ns]
    first_uid = kube.get(FTJ.format(ns=a) + "/bot")["metadata"]["uid"]

    # Delete and re-create the job in namespace a: its Adapter (from the first job) stays, so
    # the new job stops before training and says which Adapter holds the name and how to go on.
    kube.delete(FTJ.format(ns=a) + "/bot")
    wait_for(lambda: kube.get_or_none(FTJ.format(ns=a) + "/bot") is None, 60, "bot deleted")
    kube.create(FTJ.format(ns=a), lora_job("bot"))
    obj = _finished(kube, a)
    failed = condition(obj, "Failed")
    assert obj["status"]["phase"] == "Failed" and failed is not None, dump(obj)  # type: ignore[index]
    assert failed["reason"] == "AdapterNameTaken", dump(obj)
    assert first_uid in failed["message"] and f"kubectl delete adapter bot -n {a}" in failed["message"]
    assert (
        kube.get_or_none(f"/apis/batch/v1/namespaces/{a}/jobs/{child_names(kube, a, 'bot')['train']}") is None
    )
    assert _adapter_ref(kube, a) == refs[a]  # the old Adapter is untouched

    # As the message says: delete the old Adapter and the job, then apply the manifest again.
    kube.delete(ADAPTERS.format(ns=a) + "/bot")
    kube.delete(FTJ.format(ns=a) + "/bot")
    wait_for(lambda: kube.get_or_none(FTJ.format(ns=a) + "/bot") is None, 60, "bot deleted again")
    kube.create(FTJ.format(ns=a), lora_job("bot"))
    obj = _finished(kube, a)
    assert obj["status"]["phase"] == "Succeeded", dump(obj)  # type: ignore[index]
    rerun = _adapter_ref(kube, a)
    assert obj["status"]["adapter"]["ref"] == rerun  # type: ignore[index]

    digests = {refs[a], refs[b], rerun}
    assert len(digests) == 3, digests
    # the re-created job pushed under a tag of its own: the first run's tag still resolves to it
    tags = registry.list_tags(f"{prefix}/{a}/bot", options=INSECURE)
    assert len(tags) == 2, tags
    assert {registry.resolve(f"{prefix}/{a}/bot:{t}", options=INSECURE) for t in tags} == {
        refs[a].rsplit("@", 1)[1],
        rerun.rsplit("@", 1)[1],
    }
    for i, ref in enumerate(sorted(digests)):
        assert registry.pull(ref, tmp_path / f"pulled-{i}", options=INSECURE) == ref
        assert (tmp_path / f"pulled-{i}" / "adapter_model.safetensors").is_file()


def test_a_job_that_would_push_to_a_path_is_refused_by_the_api_server(
    kube: Kube, namespace: str, kubetune_crds: CrdReport
) -> None:
    body = lora_job("pathy", output={"repository": "/srv/adapters"})
    with pytest.raises(ApiException) as err:
        kube.create(FTJ.format(ns=namespace), body)
    assert err.value.status == 422
    assert "spec.output.repository must be a remote registry, oci://HOST/PATH" in str(err.value.body)
    kube.create(FTJ.format(ns=namespace), lora_job("remote", output={"repository": "oci://r.test/ml/x"}))
