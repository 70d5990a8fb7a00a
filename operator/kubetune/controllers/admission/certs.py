"""A self-signed serving certificate for the admission webhook, when no certificate is mounted.

Used where the operator manages its own ValidatingWebhookConfiguration (``--webhook-url``): it
generates a key and a certificate for the URL's host at start-up and publishes the certificate
as the configuration's ``caBundle``. In a cluster the chart mounts one instead (see
``charts/kubetune/templates/webhook.yaml``). Writes two files; no network.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass(frozen=True)
class ServingCert:
    """PEM files of a serving certificate and its key; ``ca_pem`` is what clients trust."""

    certfile: Path
    keyfile: Path

    @property
    def ca_pem(self) -> bytes:
        return self.certfile.read_bytes()


def self_signed(directory: Path, hosts: list[str], *, days: int = 365) -> ServingCert:
    """A self-signed certificate valid for ``hosts`` (DNS names or IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "kubetune-webhook")])
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    out = ServingCert(directory / "tls.crt", directory / "tls.key")
    out.keyfile.touch(mode=0o600)
    out.keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    out.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out
