"""A throwaway CNCF distribution registry on 127.0.0.1, for tests, benchmarks and local mode.

:class:`DevRegistry` writes a config file, starts the ``docker-registry`` binary (the Debian
package of CNCF distribution; an upstream ``registry`` binary works too) on a free port with its
storage in a given directory, optionally behind htpasswd auth, TLS, or a token service, and stops
it. It is a process manager only: it never pushes or pulls anything itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from kubetune.registry import errors, oci

BINARIES = ("docker-registry", "registry")


def find_binary() -> str | None:
    """Path of the registry binary, or None when the ``docker-registry`` package is missing."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class DevRegistry:
    """One registry process. ``storage`` is its root directory (blobs live under
    ``docker/registry/v2``); ``htpasswd`` enables basic auth; ``tls`` is (certificate, key);
    ``token`` is a mapping for distribution's ``auth.token`` section (realm, service, issuer,
    rootcertbundle); ``ca_file`` is what signed the TLS certificate (default: the certificate);
    ``readonly`` puts it in distribution's maintenance mode: reads work, every push is refused."""

    workdir: Path
    htpasswd: Path | None = None
    tls: tuple[Path, Path] | None = None
    token: dict[str, str] | None = None
    ca_file: Path | None = None
    readonly: bool = False
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def config(self) -> dict[str, Any]:
        http: dict[str, Any] = {"addr": self.host, "secret": "kubetune-dev-registry"}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        body: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": http,
        }
        if self.readonly:
            body["storage"]["maintenance"] = {"readonly": {"enabled": True}}
        if self.htpasswd:
            body["auth"] = {"htpasswd": {"realm": "kubetune-dev", "path": str(self.htpasswd)}}
        elif self.token:
            body["auth"] = {"token": dict(self.token)}
        return body

    def start(self, timeout: float = 30.0) -> DevRegistry:
        binary = find_binary()
        if binary is None:
            raise errors.Unreachable(
                "no registry binary (docker-registry) on PATH", "install it: apt-get install docker-registry"
            )
        self.storage.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self.port = free_port() if attempt or not self.port else self.port
            config_path = self.workdir / "config.yml"
            config_path.write_text(yaml.safe_dump(self.config()))
            env = {**os.environ, "REGISTRY_STORAGE_DELETE_ENABLED": "true"}
            with self.log_path.open("ab") as log_file:
                self.process = subprocess.Popen(
                    [binary, "serve", str(config_path)], stdout=log_file, stderr=subprocess.STDOUT, env=env
                )
            if self._wait_ready(timeout):
                return self
            exited = self.process is not None and self.process.poll() is not None
            self.stop()
            if not exited:
                break  # running but not answering: another attempt would not help
            # It exited, probably after losing a race for the port: the next attempt picks another.
        raise errors.Unreachable(
            f"registry did not start on {self.host}", f"see {self.log_path} for the registry's own log"
        )

    def _wait_ready(self, timeout: float) -> bool:
        ca_file = self.ca_file or (self.tls[0] if self.tls else None)
        client = oci.Client(self.host, transport=oci.Transport(insecure=self.tls is None, ca_file=ca_file))
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    client.ping()
                    return True
                except errors.AuthenticationFailed:
                    return True
                except errors.RegistryError:
                    time.sleep(0.1)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> DevRegistry:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
