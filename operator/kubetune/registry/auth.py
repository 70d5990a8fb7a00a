"""Registry credentials: where they come from (flags, environment, Docker config files) and how
they are kept out of logs.

Resolution order for a registry host: explicit credentials (CLI flags or a caller), then the
``KUBETUNE_REGISTRY_*`` environment (how a Pod receives a Secret), then Docker-style auth files
(``$KUBETUNE_REGISTRY_AUTH_FILE``, ``$REGISTRY_AUTH_FILE``, ``$DOCKER_CONFIG/config.json``,
``~/.docker/config.json``, ``$XDG_RUNTIME_DIR/containers/auth.json``; a mounted
``.dockerconfigjson`` Secret has the same shape), including credential helpers; else anonymous.
This module never talks to a registry and never puts a secret in a message, log or ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from kubetune.registry import errors

ENV_USERNAME = "KUBETUNE_REGISTRY_USERNAME"
ENV_PASSWORD = "KUBETUNE_REGISTRY_PASSWORD"
ENV_TOKEN = "KUBETUNE_REGISTRY_TOKEN"
ENV_HOST = "KUBETUNE_REGISTRY_HOST"
ENV_AUTH_FILE = "KUBETUNE_REGISTRY_AUTH_FILE"
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclasses.dataclass(frozen=True, repr=False)
class Credentials:
    """What to authenticate with. ``source`` says where it came from, for error messages."""

    username: str | None = None
    password: str | None = None
    token: str | None = None
    identity_token: str | None = None
    source: str = "anonymous"

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.token or self.identity_token)

    def describe(self) -> str:
        """A secret-free description, e.g. ``user 'ci' from ~/.docker/config.json``."""
        if self.anonymous:
            return "no credentials"
        who = f"user {self.username!r}" if self.username else "a token"
        return f"{who} from {self.source}"

    def __repr__(self) -> str:
        return f"Credentials({self.describe()})"


ANONYMOUS = Credentials()


def resolve(
    host: str,
    explicit: Credentials | None = None,
    env: Mapping[str, str] | None = None,
    auth_file: Path | None = None,
) -> Credentials:
    """Credentials for ``host`` (``host[:port]``), anonymous when none are configured."""
    if explicit is not None and not explicit.anonymous:
        return explicit
    env = os.environ if env is None else env
    from_env = _from_env(host, env)
    if from_env is not None:
        return from_env
    for path in _auth_files(env, auth_file):
        found = _from_auth_file(host, path)
        if found is not None:
            return found
    return ANONYMOUS


def _from_env(host: str, env: Mapping[str, str]) -> Credentials | None:
    scope = env.get(ENV_HOST)
    if scope and scope != host:
        return None
    if not scope and any(env.get(k) for k in (ENV_TOKEN, ENV_USERNAME, ENV_PASSWORD)):
        # credentials for no host in particular would go to every host asked (a copy's source,
        # an oci:// dataset on any server): they must name theirs, as an auth file does
        raise errors.AuthenticationFailed(
            f"${ENV_TOKEN} or ${ENV_USERNAME}/${ENV_PASSWORD} are set but ${ENV_HOST} is not, so "
            f"kubetune will not send them to {host}",
            f"set {ENV_HOST} to the registry they are for (host[:port]), or use an auth file",
        )
    token = env.get(ENV_TOKEN)
    if token:
        return Credentials(token=token, source=f"${ENV_TOKEN}")
    username, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if username or password:
        if not (username and password):
            raise errors.AuthenticationFailed(
                f"only one of ${ENV_USERNAME} and ${ENV_PASSWORD} is set for {host}", "set both, or neither"
            )
        return Credentials(username=username, password=password, source=f"${ENV_USERNAME}/${ENV_PASSWORD}")
    return None


def _auth_files(env: Mapping[str, str], explicit: Path | None) -> list[Path]:
    if explicit is not None:
        if not explicit.is_file():
            raise errors.AuthenticationFailed(
                f"registry auth file {explicit} does not exist", "pass a Docker config.json or auth.json"
            )
        return [explicit]
    candidates: list[Path] = []
    for key in (ENV_AUTH_FILE, "REGISTRY_AUTH_FILE"):
        if env.get(key):
            candidates.append(Path(env[key]).expanduser())
    docker_dir = env.get("DOCKER_CONFIG")
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    candidates.append(
        Path(docker_dir).expanduser() / "config.json" if docker_dir else home / ".docker" / "config.json"
    )
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    return [path for path in candidates if path.is_file()]


def _keys_for(host: str) -> list[str]:
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host in _DOCKER_HUB_KEYS:
        keys.extend(_DOCKER_HUB_KEYS)
    return keys


def _from_auth_file(host: str, path: Path) -> Credentials | None:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        raise errors.AuthenticationFailed(
            f"cannot read registry auth file {path}", "fix or remove the file (it must be JSON)"
        ) from None
    if not isinstance(body, dict):
        return None
    auths = body.get("auths") or {}
    for key in _keys_for(host):
        entry = auths.get(key)
        if isinstance(entry, dict):
            creds = _from_entry(entry, host, path)
            if creds is not None:
                return creds
    helpers = body.get("credHelpers") or {}
    helper = next((helpers[k] for k in _keys_for(host) if k in helpers), None) or body.get("credsStore")
    if isinstance(helper, str) and helper:
        return _from_helper(helper, host, path)
    return None


def _from_entry(entry: Mapping[str, object], host: str, path: Path) -> Credentials | None:
    source = str(path)
    identity = entry.get("identitytoken")
    registry_token = entry.get("registrytoken")
    if isinstance(registry_token, str) and registry_token:
        return Credentials(token=registry_token, source=source)
    username, password = entry.get("username"), entry.get("password")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.AuthenticationFailed(
                f"the auth entry for {host} in {path} is not base64 of user:password",
                f"log in to {host} again",
            ) from None
    if isinstance(identity, str) and identity:
        return Credentials(
            username=str(username) if username else None, identity_token=identity, source=source
        )
    if isinstance(username, str) and username and isinstance(password, str):
        return Credentials(username=username, password=password, source=source)
    return None


def _from_helper(helper: str, host: str, path: Path) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run(
            [program, "get"], input=host.encode(), capture_output=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise errors.AuthenticationFailed(
            f"{path} names the credential helper {program}, which is not installed",
            f"install it or remove it from {path}",
        ) from None
    except subprocess.TimeoutExpired:
        raise errors.AuthenticationFailed(f"credential helper {program} timed out for {host}", "") from None
    if done.returncode != 0:
        return None  # helpers exit non-zero for "no credentials for this host"
    try:
        body = json.loads(done.stdout)
    except ValueError:
        raise errors.AuthenticationFailed(
            f"credential helper {program} gave no JSON for {host}", ""
        ) from None
    username, secret = body.get("Username"), body.get("Secret")
    if not secret:
        return None
    source = f"credential helper {program}"
    if username == "<token>":
        return Credentials(identity_token=secret, source=source)
    return Credentials(username=username, password=secret, source=source)
