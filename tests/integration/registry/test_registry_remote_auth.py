"""Authentication and TLS against real registries: htpasswd, bearer tokens, a private CA."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubetune import registry
from kubetune.registry import auth, devserver, errors, progress

LINEAGE = {"baseModel": {"uri": "hf://org/tiny"}, "method": "lora"}
QUIET = progress.Silent()


def _options(credentials: tuple[str, str], password: str | None = None) -> registry.Options:
    user, right = credentials
    creds = auth.Credentials(username=user, password=right if password is None else password)
    return registry.Options(insecure=True, credentials=creds)


def test_htpasswd_credentials_push_and_pull(
    credentials: tuple[str, str], auth_registry: devserver.DevRegistry, adapter_dir: Path, tmp_path: Path
) -> None:
    ref = f"oci://{auth_registry.host}/team/bot:v1"
    registry.push_directory(adapter_dir, ref, LINEAGE, options=_options(credentials), reporter=QUIET)
    registry.pull(ref, tmp_path / "out", options=_options(credentials), reporter=QUIET)
    assert (tmp_path / "out" / "adapter_config.json").read_bytes() == (
        adapter_dir / "adapter_config.json"
    ).read_bytes()


def test_wrong_password_is_a_clear_error_naming_the_registry_without_the_password(
    credentials: tuple[str, str], auth_registry: devserver.DevRegistry, adapter_dir: Path
) -> None:
    with pytest.raises(errors.AuthenticationFailed) as info:
        registry.push_directory(
            adapter_dir,
            f"oci://{auth_registry.host}/team/bot:v1",
            LINEAGE,
            options=_options(credentials, password="wrong-password-xyz"),
            reporter=QUIET,
        )
    message = str(info.value)
    assert f"registry {auth_registry.host} rejected the credentials" in message
    assert f"user '{credentials[0]}'" in message
    assert "wrong-password-xyz" not in message


def test_missing_credentials_say_how_to_provide_them(
    auth_registry: devserver.DevRegistry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for key in (
        "KUBETUNE_REGISTRY_USERNAME",
        "KUBETUNE_REGISTRY_PASSWORD",
        "KUBETUNE_REGISTRY_TOKEN",
        "REGISTRY_AUTH_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(
        errors.AuthenticationFailed, match=rf"registry {auth_registry.host} requires credentials"
    ):
        registry.list_tags(f"oci://{auth_registry.host}/team/bot", options=registry.Options(insecure=True))


def test_credentials_from_environment_and_docker_config(
    credentials: tuple[str, str],
    auth_registry: devserver.DevRegistry,
    adapter_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = registry.Options(insecure=True)
    ref = f"oci://{auth_registry.host}/team/bot:v1"
    monkeypatch.setenv("KUBETUNE_REGISTRY_USERNAME", credentials[0])
    monkeypatch.setenv("KUBETUNE_REGISTRY_PASSWORD", credentials[1])
    monkeypatch.setenv("KUBETUNE_REGISTRY_HOST", auth_registry.host)
    registry.push_directory(adapter_dir, ref, LINEAGE, options=plain, reporter=QUIET)
    monkeypatch.delenv("KUBETUNE_REGISTRY_USERNAME")
    monkeypatch.delenv("KUBETUNE_REGISTRY_PASSWORD")
    monkeypatch.delenv("KUBETUNE_REGISTRY_HOST")

    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    encoded = base64.b64encode(":".join(credentials).encode()).decode()
    config.write_text(json.dumps({"auths": {auth_registry.host: {"auth": encoded}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config.parent))
    assert registry.list_tags(f"oci://{auth_registry.host}/team/bot", options=plain) == ["v1"]


def test_cli_wrong_password_prints_one_line_and_exits_1(
    credentials: tuple[str, str], auth_registry: devserver.DevRegistry, adapter_dir: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from kubetune.cli import main; sys.exit(main.main())",
            "registry",
            "push",
            str(adapter_dir),
            f"oci://{auth_registry.host}/team/bot:v1",
            "--base-model",
            "hf://a/b",
            "--method",
            "lora",
            "--insecure",
            "--username",
            credentials[0],
            "--password-stdin",
        ],
        input="not-the-password-123\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"kubetune: registry {auth_registry.host} rejected the credentials")
    assert "not-the-password-123" not in done.stderr
    assert "Traceback" not in done.stderr


def test_bearer_token_flow_with_the_registry_token_service(
    credentials: tuple[str, str],
    token_registry: tuple[devserver.DevRegistry, Any],
    adapter_dir: Path,
    tmp_path: Path,
) -> None:
    server, tokens = token_registry
    ref = f"oci://{server.host}/team/bot:v1"
    registry.push_directory(adapter_dir, ref, LINEAGE, options=_options(credentials), reporter=QUIET)
    registry.pull(ref, tmp_path / "out", options=_options(credentials), reporter=QUIET)
    assert (tmp_path / "out" / "README.md").read_bytes() == (adapter_dir / "README.md").read_bytes()
    assert registry.list_repositories(f"oci://{server.host}", options=_options(credentials)) == ["team/bot"]
    scopes = {scope for request in tokens.requests for scope in request["scope"]}
    assert "repository:team/bot:pull,push" in scopes
    # Every scoped token was asked for as the user (the unscoped one is the fixture's readiness probe).
    assert all(request["user"] == credentials[0] for request in tokens.requests if request["scope"])


def test_bearer_token_service_rejecting_the_password_is_an_auth_error(
    credentials: tuple[str, str], token_registry: tuple[devserver.DevRegistry, Any]
) -> None:
    server, _tokens = token_registry
    with pytest.raises(
        errors.AuthenticationFailed, match=rf"registry {server.host} rejected the credentials"
    ):
        registry.list_tags(f"oci://{server.host}/team/bot", options=_options(credentials, password="nope"))


def test_tls_registry_works_with_its_ca_and_explains_when_it_is_not_trusted(
    tls_registry: devserver.DevRegistry,
    tls_files: dict[str, Path],
    adapter_dir: Path,
    tmp_path: Path,
) -> None:
    ref = f"oci://{tls_registry.host}/team/bot:v1"
    with pytest.raises(errors.Unreachable, match="--ca-file"):
        registry.push_directory(
            adapter_dir, ref, LINEAGE, options=registry.Options(insecure=False), reporter=QUIET
        )
    trusted = registry.Options(insecure=False, ca_file=tls_files["ca"])
    registry.push_directory(adapter_dir, ref, LINEAGE, options=trusted, reporter=QUIET)
    registry.pull(ref, tmp_path / "out", options=trusted, reporter=QUIET)
    assert (tmp_path / "out" / "adapter_model.safetensors").stat().st_size == 3 << 20
    with pytest.raises(errors.Unreachable, match="speaks HTTPS"):
        registry.resolve(ref, options=registry.Options(insecure=True))
