"""Start-up time and teardown of the control plane itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kubetune.testing import Cluster, procs, wait_for
from kubetune.testing.binaries import Binaries
from kubetune.testing.nodeagent import network
from kubetune.testing.nodeagent.config import NodeSpec

pytestmark = pytest.mark.timeout(120)
COMPONENTS = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}


def _processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line or environment contains ``text`` (a /proc scan)."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid() or not procs.alive(int(entry)):
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            found.append((int(entry), procs.process_name(int(entry))))
    return found


def test_control_plane_is_ready_within_30_seconds(cluster: Cluster) -> None:
    print(f"control plane ready after {cluster.timings['control_plane']:.1f}s: {cluster.timings}")
    assert cluster.timings["control_plane"] < 30


def test_stopping_a_cluster_leaves_no_processes_namespaces_or_addresses(
    binaries: Binaries, tmp_path: Path
) -> None:
    second = Cluster(tmp_path / "second", nodes=[NodeSpec(name="solo", gpus=1)], binaries=binaries)
    with second:
        print(f"second cluster ready after {second.timings['control_plane']:.1f}s: {second.timings}")
        assert second.timings["control_plane"] < 30
        second.create_namespace("work")
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "busy", "namespace": "work"},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "600"]}]},
        }
        second.kube.create_object(pod)
        wait_for(
            lambda: (second.kube.pod("work", "busy") or {}).get("status", {}).get("phase") == "Running",
            30,
            "a pod in the second cluster",
        )
        net = second.network
        assert net is not None
        running = {p.name for p in procs.marked(second.cluster_id)}
        assert running >= COMPONENTS, running
        assert "sleep" in running
        assert network.leftover_sandboxes(net)

    assert procs.marked(second.cluster_id) == []
    assert _processes_mentioning(str(tmp_path / "second")) == []
    assert network.leftover_sandboxes(net) == []
    addresses = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True
    )
    assert net.gateway not in addresses.stdout and net.kubernetes_service_ip not in addresses.stdout
