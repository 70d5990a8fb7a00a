"""What a trainer pod is given: the names the builders set are the ones the trainer reads, its
paths are where the builders mount things, and KUBETUNE_REGISTRY_INSECURE has one reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import pod
from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.controllers.finetunejob import builders
from kubetune.controllers.settings import Settings, SettingsError
from kubetune.registry import store
from kubetune.trainer import publish, sources

SETTINGS = Settings(
    default_registry="oci://registry.test/ml", insecure_registries=("registry.test", "10.0.0.7:5000")
)


def _job() -> FineTuneJob:
    return FineTuneJob.model_validate(
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "bot", "namespace": "ml", "uid": "0000-1111"},
            "spec": {
                "baseModel": {"uri": "pvc://models/base"},
                "dataset": {"uri": "configmap://data/train.jsonl"},
            },
        }
    )


def _container() -> dict[str, Any]:
    container: dict[str, Any] = builders.training_job(_job(), SETTINGS)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def test_the_trainer_finds_its_sources_where_the_builders_mount_them(monkeypatch: pytest.MonkeyPatch) -> None:
    container = _container()
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    model = sources._pvc("pvc://models/base")
    assert any(model.is_relative_to(m) for m in mounts if m.startswith(pod.PVC_ROOT)), (model, mounts)
    data = sources._configmap("configmap://data/train.jsonl", "spec.dataset.uri")
    assert data.parent.as_posix() in mounts
    assert sources.sources_dir().is_relative_to(pod.WORK_DIR)
    assert publish.cluster_target() == "oci://registry.test/ml/ml/bot"
    assert {pod.JOB_NAME, pod.JOB_UID, pod.NAMESPACE} <= {e["name"] for e in container["env"]}
    assert container["args"][container["args"].index("--spec") + 1] == pod.SPEC_FILE


def test_without_the_operator_a_pvc_source_resolves_under_the_same_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(pod.PVC_ROOT_ENV, raising=False)
    assert sources._pvc("pvc://models/base") == Path(pod.PVC_ROOT) / "models/base"


@pytest.mark.parametrize(
    ("value", "every", "hosts"),
    [
        ("", False, ()),
        ("false", False, ()),
        ("no", False, ()),
        ("true", True, ()),
        ("1", True, ()),
        (" Registry.ML.svc:5000 ,10.0.0.7:5000,", False, ("10.0.0.7:5000", "registry.ml.svc:5000")),
    ],
)
def test_plain_http_hosts_has_one_reading(value: str, every: bool, hosts: tuple[str, ...]) -> None:
    plain = pod.plain_http_hosts(value)
    assert (plain.every_host, plain.hosts) == (every, hosts)


def test_the_registry_in_a_pod_reads_the_list_the_operator_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {e["name"]: e["value"] for e in _container()["env"] if "value" in e}
    monkeypatch.setenv(pod.REGISTRY_INSECURE, env[pod.REGISTRY_INSECURE])
    options = store.Options()
    assert options.transport_for("registry.test").insecure and options.transport_for("10.0.0.7:5000").insecure
    assert not options.transport_for("registry.example.com").insecure
    # every host is for local development: the registry takes it, the operator refuses it
    monkeypatch.setenv(pod.REGISTRY_INSECURE, "true")
    assert store.Options().transport_for("registry.example.com").insecure
    with pytest.raises(SettingsError, match=r"registry\.insecureHosts"):
        Settings.from_env({pod.REGISTRY_INSECURE: "true"})
    assert Settings.from_env({pod.REGISTRY_INSECURE: " Registry.test "}).insecure_registries == (
        "registry.test",
    )
