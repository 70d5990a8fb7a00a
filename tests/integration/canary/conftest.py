"""Canary level: real Prometheus data drives the rollout state machine, without Kubernetes.

Fixtures: one tiny model; one stable server for the whole session, scraped under the same labels
throughout (a stable revision's pods have served, and been scraped, for a while); a new canary
server for every test, healthy or with injected faults (``--fault-error-rate 0.5``,
``--fault-latency-ms 250``), under a revision name of its own, because a canary revision's pods
are new: like TGI, a server creates its series with its first request and the analysis counts a
series born in its window from zero, so a canary reused across tests would bring earlier tests'
requests into its first window. One Prometheus scrapes whatever a test writes to its file_sd
file. Custom metrics go through ``tenant_proxy``, a real prom-label-proxy in front of that
Prometheus, as the operator sends them. Skipped when /usr/bin/prometheus (or, for the tenant
proxy, the prom-label-proxy build) is missing, unless KUBETUNE_REQUIRE_PROMETHEUS is set (then
it is an error).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubetune.testing import prometheus, promlabelproxy, servers
from kubetune.testing.waiting import wait_for

from . import harness


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    why = prometheus.prometheus_available()
    if why is not None:
        if os.environ.get("KUBETUNE_REQUIRE_PROMETHEUS"):
            pytest.fail(f"KUBETUNE_REQUIRE_PROMETHEUS is set but {why}", pytrace=False)
        pytest.skip(why)
    return prometheus.PROMETHEUS_BIN


# the canaries a test can ask for, by the flags that make them what they are
CANARY_FLAGS: dict[str, tuple[str, ...]] = {
    "healthy": (),
    "errors": ("--fault-error-rate", "0.5", "--fault-seed", "7"),
    "slow": ("--fault-latency-ms", "250"),
}


@pytest.fixture(scope="session")
def canary_model(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return servers.build_tiny_model(tmp_path_factory.mktemp("canary-model"))


@pytest.fixture(scope="session")
def stable_server(canary_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    server = servers.launch_model("stable", canary_model, tmp_path_factory.mktemp("canary-serve-logs"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def new_canary(canary_model: Path, tmp_path: Path) -> Iterator[Callable[[str], servers.Server]]:
    """Starts a canary server that has served nothing yet: ``new_canary("errors")``."""
    started: list[servers.Server] = []

    def start(kind: str) -> servers.Server:
        server = servers.launch_model(kind, canary_model, tmp_path, *CANARY_FLAGS[kind])
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def prom(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[prometheus.Prometheus]:
    instance = prometheus.Prometheus(tmp_path_factory.mktemp("prometheus"), binary=prometheus_binary)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@dataclasses.dataclass(frozen=True)
class Scraped:
    """What :func:`scrape` set up: the namespace, both revisions and both servers."""

    namespace: str
    stable: str
    canary: str
    stable_server: servers.Server
    canary_server: servers.Server


# Every test's revisions live in this namespace, and the stable server keeps its labels for the
# whole session: like a stable revision's pods, its series exist long before any test's window, so
# a window holds only that window's stable requests (relabelling it per test would make its series
# born in the window, carrying every earlier request). Canaries are new revisions each time.
NAMESPACE, STABLE = "canary-level", "stable"


@pytest.fixture
def scrape(
    prom: prometheus.Prometheus,
    stable_server: servers.Server,
    new_canary: Callable[[str], servers.Server],
) -> Callable[[str, str], Scraped]:
    """A new canary of ``kind`` (revision ``<hint>-<random>``) and the stable server, both scraped."""

    def start(kind: str, hint: str) -> Scraped:
        canary_server = new_canary(kind)
        canary = f"{hint}-{uuid.uuid4().hex[:6]}"
        prom.set_targets(
            harness.label(stable_server, NAMESPACE, STABLE) | harness.label(canary_server, NAMESPACE, canary)
        )
        up = f'count(up{{namespace="{NAMESPACE}",kubetune_io_revision=~"{STABLE}|{canary}"}} == 1)'
        client = prom.client()
        wait_for(lambda: client.query(up) == 2, 30, f"stable and canary {canary} scraped")
        return Scraped(NAMESPACE, STABLE, canary, stable_server, canary_server)

    return start


@pytest.fixture
def own_prometheus(prometheus_binary: str, tmp_path: Path) -> Iterator[prometheus.Prometheus]:
    """A Prometheus of the test's own, for tests that stop it."""
    instance = prometheus.Prometheus(tmp_path / "prometheus", binary=prometheus_binary)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def tenant_proxy(prom: prometheus.Prometheus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of prom-label-proxy (``-label namespace``) in front of ``prom``: where custom metrics go."""
    binary = promlabelproxy.find_binary()
    if binary is None:
        why = "prom-label-proxy is not built (run hack/build-prom-label-proxy.sh)"
        if os.environ.get("KUBETUNE_REQUIRE_PROMETHEUS"):
            pytest.fail(f"KUBETUNE_REQUIRE_PROMETHEUS is set but {why}", pytrace=False)
        pytest.skip(why)
    with promlabelproxy.PromLabelProxy(binary, prom.url, tmp_path_factory.mktemp("tenant-proxy")) as proxy:
        yield proxy.url
