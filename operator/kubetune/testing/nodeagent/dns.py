"""A small cluster DNS on the gateway, so pods resolve Services and each other without waiting.

Pods get ``nameserver <gateway>`` with the usual ``<ns>.svc.cluster.local`` search path.
Answers (A records, TTL 5 s):

- ``<svc>.<ns>.svc.cluster.local``: the IPs of the Service's ready endpoints (EndpointSlices).
  There is no kube-proxy, so clients reach pods directly: use the same Service ``port`` and
  ``targetPort``. Headless Services work exactly as in a real cluster.
- ``<hostname>.<subdomain>.<ns>.svc.cluster.local``: the pod with that ``spec.hostname`` and
  ``spec.subdomain`` (Indexed Jobs behind a headless Service, e.g. for torchrun).
- ``a-b-c-d.<ns>.pod.cluster.local``: ``a.b.c.d``.
- ``kubernetes.default.svc`` (with or without ``.cluster.local``): the address pods reach the
  API server on (``KUBERNETES_SERVICE_HOST``), as a ClusterIP would be in a real cluster. kopf's
  in-cluster login (``login_with_service_account``) connects to that name.
- anything else: whatever the host resolves (IPv4); AAAA and PTR get a fast empty answer.

Without it, a lookup from inside a pod network namespace (``socket.getfqdn`` in
``http.server``, for one) waits for the host's unreachable resolver. UDP only.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from typing import Any

from kubetune.testing.kube import Kube

log = logging.getLogger(__name__)
Obj = dict[str, Any]
DOMAIN = "cluster.local"
TYPE_A, TYPE_AAAA = 1, 28
NXDOMAIN = 3
API_SERVER_NAME = "kubernetes.default.svc"


def resolv_conf(namespace: str, nameserver: str) -> str:
    """The ``/etc/resolv.conf`` of a ClusterFirst pod in ``namespace``."""
    return (
        f"search {namespace}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\n"
        f"nameserver {nameserver}\n"
        "options ndots:5 timeout:1 attempts:2\n"
    )


def _parse_question(packet: bytes) -> tuple[str, int, int]:
    """(name, qtype, offset after the question) of the first question."""
    labels: list[str] = []
    pos = 12
    while packet[pos]:
        length = packet[pos]
        labels.append(packet[pos + 1 : pos + 1 + length].decode(errors="replace"))
        pos += 1 + length
    qtype = struct.unpack("!H", packet[pos + 1 : pos + 3])[0]
    return ".".join(labels).lower(), qtype, pos + 5


def _answer(packet: bytes, end: int, ips: list[str] | None) -> bytes:
    """A response to ``packet``: NXDOMAIN when ``ips`` is None, else those A records."""
    query_id, flags = struct.unpack("!HH", packet[:4])
    rcode = NXDOMAIN if ips is None else 0
    out_flags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 5, 4) + socket.inet_aton(ip) for ip in ips or []
    )
    header = struct.pack("!HHHHHH", query_id, out_flags, 1, len(ips or []), 0, 0)
    return header + packet[12:end] + answers


class ClusterDns:
    """UDP DNS server on ``(address, 53)`` answering from the API server and the host."""

    def __init__(self, kube: Kube, address: str, api_server_ip: str | None = None) -> None:
        self.kube = kube
        self.api_server_ip = api_server_ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.5)
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="cluster-dns", daemon=True)

    def start(self) -> ClusterDns:
        self.thread.start()
        return self

    def close(self) -> None:
        self.closed.set()
        self.thread.join(timeout=2)
        self.sock.close()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                packet, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._reply, args=(packet, peer), daemon=True).start()

    def _reply(self, packet: bytes, peer: tuple[str, int]) -> None:
        try:
            name, qtype, end = _parse_question(packet)
            ips: list[str] | None
            if qtype == TYPE_A:
                ips = self.lookup(name)
            else:
                ips = [] if name.endswith(DOMAIN) or qtype == TYPE_AAAA else None
            with contextlib.suppress(OSError):
                self.sock.sendto(_answer(packet, end, ips), peer)
        except Exception as exc:  # a malformed query must not kill the server
            log.debug("dns query failed: %s", exc)

    def lookup(self, name: str) -> list[str] | None:
        """IPv4 addresses for ``name``, or None for NXDOMAIN."""
        if self.api_server_ip and name.removesuffix("." + DOMAIN) == API_SERVER_NAME:
            return [self.api_server_ip]
        if name.endswith("." + DOMAIN):
            parts = name[: -len(DOMAIN) - 1].split(".")
            if len(parts) == 3 and parts[2] == "pod":
                return [parts[0].replace("-", ".")]
            if len(parts) == 3 and parts[2] == "svc":
                return self._service(parts[1], parts[0])
            if len(parts) == 4 and parts[3] == "svc":
                return self._pod_by_hostname(parts[2], parts[1], parts[0])
            return None
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            return None
        return sorted({str(info[4][0]) for info in infos})

    def _service(self, namespace: str, service: str) -> list[str] | None:
        svc = self.kube.get_or_none(f"/api/v1/namespaces/{namespace}/services/{service}")
        if svc is None:
            return None
        slices = self.kube.list(
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            labelSelector=f"kubernetes.io/service-name={service}",
        )
        ips = {
            addr
            for s in slices
            for ep in s.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready", True)
            for addr in ep.get("addresses") or []
        }
        return sorted(ips)

    def _pod_by_hostname(self, namespace: str, subdomain: str, hostname: str) -> list[str] | None:
        for pod in self.kube.list(f"/api/v1/namespaces/{namespace}/pods"):
            spec = pod.get("spec") or {}
            ip = (pod.get("status") or {}).get("podIP")
            if spec.get("hostname") == hostname and spec.get("subdomain") == subdomain and ip:
                return [ip]
        return None
