"""Certificates and kubeconfigs for the test control plane, made with ``cryptography``.

One throw-away CA signs everything: the serving certificate shared by kube-apiserver, the
controller-manager, the scheduler and the node agent's kubelet endpoint; an admin client
certificate in ``system:masters``; and, on request, client certificates for other identities
(RBAC tests). A separate RSA key pair signs ServiceAccount tokens. Files are PEM; nothing here
starts processes or talks to a server.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=7)
SERVER_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclasses.dataclass(frozen=True)
class Pki:
    """Paths of the PEM files under one directory."""

    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_crt(self) -> Path:
        return self.dir / "serving.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "serving.key"

    @property
    def admin_crt(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _issue(
    common_name: str,
    key: PrivateKey,
    ca: tuple[x509.Certificate, PrivateKey] | None = None,
    *,
    orgs: Sequence[str] = (),
    is_ca: bool = False,
    usages: Sequence[x509.ObjectIdentifier] = (),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    name = x509.Name(attrs)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca[0].subject if ca else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if dns or ips:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca[1] if ca else key, hashes.SHA256())


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def create(directory: Path, *, ips: Sequence[str] = ("127.0.0.1",), dns: Sequence[str] = ()) -> Pki:
    """Write a fresh CA, serving cert (for ``ips`` and the usual names), admin cert, SA keys."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    ca_key = _new_key()
    ca_cert = _issue("kubetune-test-ca", ca_key, is_ca=True)
    ca = (ca_cert, ca_key)
    serving_key = _new_key()
    serving = _issue(
        "kube-apiserver",
        serving_key,
        ca,
        usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
        dns=(*SERVER_DNS, *dns),
        ips=tuple(dict.fromkeys(("127.0.0.1", *ips))),
    )
    admin_key = _new_key()
    admin = _issue(
        "kubetune-admin", admin_key, ca, orgs=("system:masters",), usages=(ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {
        pki.ca_crt: _pem_cert(ca_cert),
        pki.ca_key: _pem_key(ca_key),
        pki.serving_crt: _pem_cert(serving),
        pki.serving_key: _pem_key(serving_key),
        pki.admin_crt: _pem_cert(admin),
        pki.admin_key: _pem_key(admin_key),
        pki.sa_key: _pem_key(sa_key),
        pki.sa_pub: sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for path, data in files.items():
        path.write_bytes(data)
        path.chmod(0o600 if path.suffix == ".key" else 0o644)
    return pki


def client_cert(pki: Pki, user: str, groups: Sequence[str] = ()) -> tuple[bytes, bytes]:
    """A client certificate and key (PEM) for ``user`` in ``groups``, signed by the test CA."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _new_key()
    cert = _issue(user, key, (ca_cert, ca_key), orgs=groups, usages=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    return _pem_cert(cert), _pem_key(key)


def serving_cert(
    pki: Pki, name: str, *, ips: Sequence[str] = ("127.0.0.1",), dns: Sequence[str] = ()
) -> tuple[bytes, bytes]:
    """A server certificate and key (PEM) for ``ips``/``dns``, signed by the test CA (e.g. for a
    webhook server that the API server calls at a URL)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _new_key()
    cert = _issue(name, key, (ca_cert, ca_key), usages=(ExtendedKeyUsageOID.SERVER_AUTH,), dns=dns, ips=ips)
    return _pem_cert(cert), _pem_key(key)


def kubeconfig(
    path: Path,
    server: str,
    ca_pem: bytes,
    *,
    user: str,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    cluster: str = "kubetune-test",
    namespace: str | None = None,
) -> Path:
    """Write a single-context kubeconfig with embedded credentials; returns ``path``."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    creds: dict[str, str] = {}
    if cert_pem is not None and key_pem is not None:
        creds = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
    if token is not None:
        creds["token"] = token
    context: dict[str, str] = {"cluster": cluster, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": cluster, "context": context}],
        "current-context": cluster,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def admin_kubeconfig(pki: Pki, path: Path, server: str) -> Path:
    """The kubeconfig of the ``system:masters`` admin used by the harness and the components."""
    return kubeconfig(
        path,
        server,
        pki.ca_crt.read_bytes(),
        user="kubetune-admin",
        cert_pem=pki.admin_crt.read_bytes(),
        key_pem=pki.admin_key.read_bytes(),
    )
