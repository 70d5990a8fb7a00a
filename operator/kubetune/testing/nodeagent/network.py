"""Pod networking for the test node agent: one network namespace and veth pair per pod.

A cluster claims a free ``10.X.0.0/16`` (X in 200..254) on the host, so two clusters on one
machine never collide:

- ``10.X.0.1`` is the gateway and every node's InternalIP; it sits on the host's ``lo``.
- ``10.X.240.0/20`` is the Service CIDR; ``10.X.240.1`` (the ``kubernetes`` Service) also sits
  on ``lo`` and the agent forwards it to the API server, so in-cluster clients work.
- node *i* owns ``10.X.(i+1).0/24``; a pod gets ``10.X.(i+1).k`` on ``eth0`` of its namespace,
  a host route to it, and a default route back through the gateway.

Netns and host-side veth names start with ``kt<X>n`` so teardown can find leftovers. Needs root
(CAP_NET_ADMIN) and iproute2; this module shells out to ``ip`` and writes sysctls, nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

CLAIMS_DIR = Path("/run/kubetune-podnet")  # one file per claimed octet, holding the owner's pid
OCTETS = range(200, 255)


class NetworkError(RuntimeError):
    """A network command failed; the message carries the command and its stderr."""


@dataclasses.dataclass(frozen=True)
class PodNetwork:
    """The addresses of one cluster, all derived from the second octet ``octet``."""

    octet: int

    @property
    def gateway(self) -> str:
        return f"10.{self.octet}.0.1"

    @property
    def service_cidr(self) -> str:
        return f"10.{self.octet}.240.0/20"

    @property
    def kubernetes_service_ip(self) -> str:
        return f"10.{self.octet}.240.1"

    @property
    def prefix(self) -> str:
        """Start of every netns and host interface name of this cluster."""
        return f"kt{self.octet}n"

    def node_cidr(self, node_index: int) -> str:
        return f"10.{self.octet}.{node_index + 1}.0/24"

    def pod_ip(self, node_index: int, host: int) -> str:
        return f"10.{self.octet}.{node_index + 1}.{host}"

    def sandbox_name(self, node_index: int, host: int) -> str:
        """Name of the netns and of the host-side veth (at most 15 characters)."""
        return f"{self.prefix}{node_index}p{host}"


def available() -> str | None:
    """None when pod networking can work here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "the node agent needs root (network and mount namespaces); run the tests as root"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed; apt-get install iproute2"
    return None


def _ip(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {proc.stderr.strip()} (input: {stdin!r})")
    return proc.stdout


def _used_octets() -> set[int]:
    text = _ip("-4", "-o", "addr", "show") + _ip("-4", "route", "show", "table", "all")
    return {int(m) for m in re.findall(r"\b10\.(\d+)\.\d+\.\d+", text)}


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(owner_pid: int) -> PodNetwork:
    """Pick an unused ``10.X.0.0/16`` and put its gateway and API Service IP on ``lo``.

    Claims of owners that died without releasing (SIGKILL) are released first.
    """
    CLAIMS_DIR.mkdir(parents=True, exist_ok=True)
    with (CLAIMS_DIR / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for claim_file in CLAIMS_DIR.glob("[0-9]*"):
            owner = claim_file.read_text().strip()
            if not (owner.isdigit() and _owner_alive(int(owner))):
                log.warning("releasing pod network 10.%s.0.0/16 of dead owner %s", claim_file.name, owner)
                release(PodNetwork(int(claim_file.name)))
        used = _used_octets() | {int(f.name) for f in CLAIMS_DIR.glob("[0-9]*")}
        for octet in OCTETS:
            if octet not in used:
                net = PodNetwork(octet)
                (CLAIMS_DIR / str(octet)).write_text(str(owner_pid))
                _ip("addr", "add", f"{net.gateway}/32", "dev", "lo")
                _ip("addr", "add", f"{net.kubernetes_service_ip}/32", "dev", "lo")
                return net
    raise NetworkError(f"no free 10.X.0.0/16 for pods (X in {OCTETS.start}..{OCTETS.stop - 1} all in use)")


def leftover_sandboxes(net: PodNetwork) -> list[str]:
    """Names of this cluster's netns that still exist."""
    names = [line.split()[0] for line in _ip("netns", "list", check=False).splitlines() if line.strip()]
    return [n for n in names if n.startswith(net.prefix)]


def release(net: PodNetwork) -> None:
    """Delete every netns and host veth of ``net`` and its addresses on ``lo``."""
    for name in leftover_sandboxes(net):
        _ip("netns", "del", name, check=False)
    for line in _ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(net.prefix):
                _ip("link", "del", name, check=False)
    for addr in (net.gateway, net.kubernetes_service_ip):
        _ip("addr", "del", f"{addr}/32", "dev", "lo", check=False)
    (CLAIMS_DIR / str(net.octet)).unlink(missing_ok=True)


def create_sandbox(net: PodNetwork, node_index: int, host: int) -> tuple[str, str]:
    """Create the pod's netns and veth pair; returns (netns path, pod IP)."""
    name = net.sandbox_name(node_index, host)
    pod_ip = net.pod_ip(node_index, host)
    ipaddress.ip_address(pod_ip)  # fail early on a bad index
    _ip("netns", "del", name, check=False)  # a stale one from a crashed run
    _ip("link", "del", name, check=False)
    _ip("-batch", "-", stdin=f"netns add {name}\nlink add {name} type veth peer name eth0 netns {name}\n")
    _ip(
        "-n",
        name,
        "-batch",
        "-",
        stdin=(
            "link set lo up\n"
            f"addr add {pod_ip}/32 dev eth0\n"
            "link set eth0 up\n"
            f"route add {net.gateway}/32 dev eth0\n"
            f"route add default via {net.gateway} dev eth0\n"
        ),
    )
    _ip("-batch", "-", stdin=f"link set {name} up\nroute add {pod_ip}/32 dev {name} src {net.gateway}\n")
    # Forward only what enters from pod veths (pod-to-pod traffic); the host's other
    # interfaces keep their setting.
    Path(f"/proc/sys/net/ipv4/conf/{name}/forwarding").write_text("1")
    return f"/run/netns/{name}", pod_ip


def delete_sandbox(net: PodNetwork, node_index: int, host: int) -> None:
    """Remove the pod's netns and veth (the netns itself lives on until its last process exits)."""
    name = net.sandbox_name(node_index, host)
    _ip("netns", "del", name, check=False)
    with contextlib.suppress(NetworkError):
        _ip("link", "del", name, check=False)
