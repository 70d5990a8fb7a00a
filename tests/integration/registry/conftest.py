"""Real registries for the registry integration tests: the Debian ``docker-registry`` (CNCF
distribution) on 127.0.0.1, a free port and a temporary storage directory, stopped afterwards.

Variants: plain HTTP, htpasswd basic auth, TLS signed by a test CA, and bearer tokens issued by a
small token service in this file (RS256 JWTs, verified by the registry against the test
certificate). Without the ``docker-registry``/``htpasswd``/``skopeo`` binaries the tests skip,
unless ``KUBETUNE_REQUIRE_REGISTRY=1`` (CI), where they fail.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.server
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from kubetune.registry import devserver

USER, PASSWORD = "kubetune-ci", "correct-horse-battery"
TOKEN_SERVICE, TOKEN_ISSUER = "kubetune-test-registry", "kubetune-test-token-issuer"


def _need(binary: str | None, what: str, package: str) -> str:
    if binary:
        return binary
    message = f"{what} not found on PATH: apt-get install {package}"
    if os.environ.get("KUBETUNE_REQUIRE_REGISTRY") == "1":
        pytest.fail(f"{message} (KUBETUNE_REQUIRE_REGISTRY=1 makes this an error)")
    pytest.skip(f"{message} (set KUBETUNE_REQUIRE_REGISTRY=1 to fail instead of skipping)")


@pytest.fixture(scope="session")
def registry_binary() -> str:
    return _need(devserver.find_binary(), "docker-registry", "docker-registry")


@pytest.fixture(scope="session")
def skopeo() -> str:
    return _need(shutil.which("skopeo"), "skopeo", "skopeo")


@pytest.fixture
def dev_registry(registry_binary: str, tmp_path: Path) -> Iterator[devserver.DevRegistry]:
    server = devserver.DevRegistry(tmp_path / "registry")
    with server:
        yield server


@pytest.fixture(scope="session")
def credentials() -> tuple[str, str]:
    """The (user, password) the auth and token registries accept."""
    return USER, PASSWORD


@pytest.fixture
def auth_registry(registry_binary: str, tmp_path: Path) -> Iterator[devserver.DevRegistry]:
    htpasswd = _need(shutil.which("htpasswd"), "htpasswd", "apache2-utils")
    line = subprocess.run(
        [htpasswd, "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout
    workdir = tmp_path / "registry"
    workdir.mkdir()
    (workdir / "htpasswd").write_text(line.strip() + "\n")
    with devserver.DevRegistry(workdir, htpasswd=workdir / "htpasswd") as server:
        yield server


# --- TLS ---------------------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it."""
    out = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("kubetune test CA"))
        .issuer_name(_name("kubetune test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    (out / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (out / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, out / "server.key")
    return {"ca": out / "ca.pem", "cert": out / "server.pem", "key": out / "server.key"}


@pytest.fixture
def tls_registry(
    registry_binary: str, tmp_path: Path, tls_files: dict[str, Path]
) -> Iterator[devserver.DevRegistry]:
    server = devserver.DevRegistry(
        tmp_path / "registry", tls=(tls_files["cert"], tls_files["key"]), ca_file=tls_files["ca"]
    )
    with server:
        yield server


# --- bearer tokens -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """Issues registry JWTs to USER (all requested actions) and anonymous callers (nothing)."""

    def __init__(self, workdir: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(TOKEN_ISSUER))
            .issuer_name(_name(TOKEN_ISSUER))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = workdir / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, Any]] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.handle(self)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(request.path).query)
        header = request.headers.get("Authorization", "")
        user = None
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if (name, password) != (USER, PASSWORD):
                request.send_response(401)
                request.end_headers()
                return
            user = name
        self.requests.append({"user": user, "scope": query.get("scope", [])})
        access = []
        for scope in query.get("scope", []) if user else []:
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        body = json.dumps({"token": self.sign(user or "", access), "expires_in": 300}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def sign(self, subject: str, access: list[dict[str, Any]]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 30,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


@pytest.fixture
def token_registry(
    registry_binary: str, tmp_path: Path
) -> Iterator[tuple[devserver.DevRegistry, TokenService]]:
    workdir = tmp_path / "registry"
    workdir.mkdir()
    tokens = TokenService(workdir)
    tokens.thread.start()
    settings = {
        "realm": tokens.realm,
        "service": TOKEN_SERVICE,
        "issuer": TOKEN_ISSUER,
        "rootcertbundle": str(tokens.bundle),
    }
    try:
        with devserver.DevRegistry(workdir, token=settings) as server:
            yield server, tokens
    finally:
        tokens.server.shutdown()
        tokens.server.server_close()


@pytest.fixture
def cutting_proxy(dev_registry: devserver.DevRegistry) -> Iterator[CuttingProxy]:
    """A proxy to ``dev_registry`` that cuts one connection after 5 MiB from the client."""
    proxy = CuttingProxy(dev_registry.port, cut_after=5 << 20)
    yield proxy
    proxy.close()


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    """A small adapter directory with nested files (random weights, so nothing deduplicates)."""
    out = tmp_path / "adapter"
    (out / "tokenizer").mkdir(parents=True)
    (out / "adapter_model.safetensors").write_bytes(os.urandom(3 << 20))
    (out / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}')
    (out / "README.md").write_text("# support-bot adapter\n")
    (out / "tokenizer" / "tokenizer.json").write_text('{"version": "1.0"}')
    return out


class CuttingProxy:
    """A TCP proxy in front of a registry that drops the first connection to carry more than
    ``cut_after`` bytes from the client: a network failure in the middle of an upload."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port, self.cut_after = upstream_port, cut_after
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        moved = 0
        try:
            while data := source.recv(1 << 16):
                moved += len(data)
                if from_client and moved > self.cut_after:
                    with self._lock:
                        cut = self.cuts == 0
                        self.cuts += 1 if cut else 0
                    if cut:
                        break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
