"""Operator settings read from the environment: what the operator refuses to start with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubetune.controllers.settings import Settings, SettingsError


def test_a_bare_registry_value_is_refused_with_the_setting_and_the_fix() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"KUBETUNE_REGISTRY": "registry.example.com/ml/adapters"})
    message = str(err.value)
    assert "\n" not in message
    assert "KUBETUNE_REGISTRY" in message and "registry.default" in message
    assert "oci://registry.example.com/ml/adapters" in message


@pytest.mark.parametrize(
    "value", ["https://registry.example.com/ml", "oci://registry.example.com", "/srv/oci"]
)
def test_anything_but_a_remote_oci_prefix_is_refused(value: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"KUBETUNE_REGISTRY": value})


def test_a_remote_prefix_is_kept_without_its_trailing_slash() -> None:
    settings = Settings.from_env({"KUBETUNE_REGISTRY": "oci://registry.example.com:5000/ml/adapters/"})
    assert settings.default_registry == "oci://registry.example.com:5000/ml/adapters"
    assert Settings.from_env({}).default_registry is None


def test_the_operator_command_exits_with_one_line_instead_of_starting() -> None:
    env = {"KUBETUNE_REGISTRY": "registry.example.com/ml", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kubetune"), "operator", "run", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kubetune operator: KUBETUNE_REGISTRY"), done.stderr


def test_plain_http_is_a_list_of_hosts_never_every_host() -> None:
    settings = Settings.from_env({"KUBETUNE_REGISTRY_INSECURE": " registry.ml.svc:5000 ,10.0.0.7:5000"})
    assert settings.insecure_registries == ("10.0.0.7:5000", "registry.ml.svc:5000")
    assert Settings.from_env({"KUBETUNE_REGISTRY_INSECURE": "false"}).insecure_registries == ()
    for everything in ("true", "1"):
        with pytest.raises(SettingsError) as err:
            Settings.from_env({"KUBETUNE_REGISTRY_INSECURE": everything})
        assert "registry.insecureHosts" in str(err.value) and "\n" not in str(err.value)


def test_resource_defaults_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"KUBETUNE_TRAINER_CPU": "12", "KUBETUNE_TRAINER_MEMORY": "96Gi", "KUBETUNE_VERIFIER_CPU": "50m"}
    )
    assert (settings.trainer_cpu, settings.trainer_memory) == ("12", "96Gi")
    assert settings.verifier_compute.cpu == "50m"
    assert settings.serving_compute == Settings().serving_compute


@pytest.mark.parametrize("value", ["lots", "0", "-1", "4 cores"])
def test_a_resource_default_that_is_not_a_positive_quantity_is_refused(value: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"KUBETUNE_SERVING_MEMORY": value})
    message = str(err.value)
    assert "KUBETUNE_SERVING_MEMORY" in message and "resourceDefaults.serving.memory" in message
    assert "\n" not in message
