"""Where registry credentials come from, and that they never show up in text (pure)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from kubetune.registry import auth, errors, store

HOST = "registry.example.com:5000"


def _docker_config(path: Path, auths: dict[str, object], **extra: object) -> Path:
    path.write_text(json.dumps({"auths": auths, **extra}))
    return path


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_no_configuration_means_anonymous(tmp_path: Path) -> None:
    creds = auth.resolve(HOST, env={"DOCKER_CONFIG": str(tmp_path)})
    assert creds.anonymous


def test_docker_config_auth_entry_is_decoded(tmp_path: Path) -> None:
    _docker_config(tmp_path / "config.json", {HOST: {"auth": _b64("ci:s3cret:with-colon")}})
    creds = auth.resolve(HOST, env={"DOCKER_CONFIG": str(tmp_path)})
    assert (creds.username, creds.password) == ("ci", "s3cret:with-colon")
    assert creds.source == str(tmp_path / "config.json")


def test_docker_config_entries_keyed_by_url_match_the_host(tmp_path: Path) -> None:
    _docker_config(tmp_path / "config.json", {f"https://{HOST}": {"username": "u", "password": "p"}})
    assert auth.resolve(HOST, env={"DOCKER_CONFIG": str(tmp_path)}).username == "u"


def test_other_hosts_do_not_get_the_credentials(tmp_path: Path) -> None:
    _docker_config(tmp_path / "config.json", {HOST: {"auth": _b64("ci:pw")}})
    assert auth.resolve("other.example.com", env={"DOCKER_CONFIG": str(tmp_path)}).anonymous


def test_identity_token_is_kept_for_the_oauth_refresh_flow(tmp_path: Path) -> None:
    _docker_config(
        tmp_path / "config.json", {HOST: {"auth": _b64("<token>:"), "identitytoken": "refresh-me"}}
    )
    creds = auth.resolve(HOST, env={"DOCKER_CONFIG": str(tmp_path)})
    assert creds.identity_token == "refresh-me"


def test_environment_wins_over_files_like_a_pod_secret(tmp_path: Path) -> None:
    _docker_config(tmp_path / "config.json", {HOST: {"auth": _b64("file:pw")}})
    env = {
        "DOCKER_CONFIG": str(tmp_path),
        "KUBETUNE_REGISTRY_USERNAME": "pod",
        "KUBETUNE_REGISTRY_PASSWORD": "from-secret",
        "KUBETUNE_REGISTRY_HOST": HOST,
    }
    creds = auth.resolve(HOST, env=env)
    assert (creds.username, creds.password) == ("pod", "from-secret")


def test_environment_credentials_can_be_scoped_to_one_host() -> None:
    env = {"KUBETUNE_REGISTRY_TOKEN": "t", "KUBETUNE_REGISTRY_HOST": "ghcr.io", "HOME": "/nonexistent"}
    assert auth.resolve("ghcr.io", env=env).token == "t"
    assert auth.resolve(HOST, env=env).token is None


def test_environment_credentials_for_no_host_in_particular_are_sent_nowhere() -> None:
    for env in (
        {"KUBETUNE_REGISTRY_TOKEN": "t"},
        {"KUBETUNE_REGISTRY_USERNAME": "u", "KUBETUNE_REGISTRY_PASSWORD": "p"},
    ):
        with pytest.raises(errors.AuthenticationFailed, match="KUBETUNE_REGISTRY_HOST is not") as err:
            auth.resolve("attacker.example", env={**env, "HOME": "/nonexistent"})
        assert "set KUBETUNE_REGISTRY_HOST" in str(err.value)


def test_explicit_credentials_are_the_destinations_in_a_copy_between_two_registries() -> None:
    from kubetune import registry
    from kubetune.registry import reference, transfer

    creds = auth.Credentials(username="cli", password="pw")
    options = registry.Options(credentials=creds)
    src, dst = reference.parse("oci://other.example/a/b:v1"), reference.parse(f"oci://{HOST}/a/b")
    assert transfer.source_options(options, src, dst) == registry.Options()
    same = reference.parse(f"oci://{HOST}/c/d:v1")
    assert transfer.source_options(options, same, dst) is options


def test_half_configured_environment_is_an_error() -> None:
    with pytest.raises(errors.AuthenticationFailed, match="set both"):
        auth.resolve(HOST, env={"KUBETUNE_REGISTRY_USERNAME": "u", "KUBETUNE_REGISTRY_HOST": HOST})


def test_explicit_credentials_win(tmp_path: Path) -> None:
    explicit = auth.Credentials(username="cli", password="pw", source="flags")
    env = {"KUBETUNE_REGISTRY_TOKEN": "t"}
    assert auth.resolve(HOST, explicit, env=env) is explicit


def test_mounted_dockerconfigjson_file_is_read(tmp_path: Path) -> None:
    secret = _docker_config(tmp_path / ".dockerconfigjson", {HOST: {"auth": _b64("sa:pw")}})
    creds = auth.resolve(HOST, env={"KUBETUNE_REGISTRY_AUTH_FILE": str(secret)})
    assert creds.username == "sa"


def test_credential_helper_is_asked_for_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text(
        '#!/bin/sh\nread host\necho "{\\"Username\\": \\"helper-$host\\", \\"Secret\\": \\"pw\\"}"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    _docker_config(tmp_path / "config.json", {}, credHelpers={HOST: "fake"})
    creds = auth.resolve(HOST, env={"DOCKER_CONFIG": str(tmp_path)})
    assert (creds.username, creds.password) == (f"helper-{HOST}", "pw")


def test_secrets_never_appear_in_repr_or_description() -> None:
    creds = auth.Credentials(username="ci", password="hunter2-secret", token=None, source="flags")
    assert "hunter2" not in repr(creds)
    assert "hunter2" not in creds.describe()
    assert "ci" in creds.describe()
    token = auth.Credentials(token="tok-secret-value", source="$KUBETUNE_REGISTRY_TOKEN")
    assert "tok-secret" not in repr(token) and "tok-secret" not in str(token)


def test_broken_auth_entry_error_does_not_echo_the_entry(tmp_path: Path) -> None:
    _docker_config(tmp_path / "config.json", {HOST: {"auth": "!!not-base64-secret!!"}})
    with pytest.raises(errors.AuthenticationFailed) as info:
        auth.resolve(HOST, env={"DOCKER_CONFIG": str(tmp_path)})
    assert "not-base64-secret" not in str(info.value)
    assert HOST in str(info.value)


def test_insecure_hosts_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBETUNE_REGISTRY_INSECURE", "127.0.0.1:5000, registry.local")
    options = store.Options()
    assert options.transport_for("127.0.0.1:5000").insecure
    assert options.transport_for("registry.local").insecure
    assert not options.transport_for("ghcr.io").insecure
    assert not store.Options(insecure=False).transport_for("registry.local").insecure
