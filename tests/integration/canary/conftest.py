"""Canary level: real Prometheus data drives the rollout state machine, without Kubernetes.

Fixtures: one tiny model; one long-running stable server for the session (stable pods have
served for a while); a new canary server for every test, healthy or with injected faults
(``--fault-error-rate 0.5``, ``--fault-latency-ms 250``), because a canary revision's pods are
new: like TGI, a server creates its series with its first request, so the analysis must count
series born inside its window, and a canary reused across tests would bring the requests of
earlier tests into the first window; one Prometheus scraping whatever a test writes to its
file_sd file. Each test gives its targets a namespace of its own, so no test sees another's
series. Skipped when /usr/bin/prometheus is missing, unless KUBETUNE_REQUIRE_PROMETHEUS is set
(then it is an error).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubetune.testing import prometheus, servers

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


@pytest.fixture
def scrape(
    prom: prometheus.Prometheus,
    stable_server: servers.Server,
    new_canary: Callable[[str], servers.Server],
) -> Callable[[str, str], Scraped]:
    """A new canary of ``kind`` and the stable server, scraped under a fresh namespace."""

    def start(kind: str, ns_hint: str) -> Scraped:
        canary_server = new_canary(kind)
        suffix = uuid.uuid4().hex[:6]
        namespace, stable, canary = f"{ns_hint}-{suffix}", f"stable-{suffix}", f"canary-{suffix}"
        prom.set_targets(
            harness.label(stable_server, namespace, stable) | harness.label(canary_server, namespace, canary)
        )
        prom.wait_scraped(namespace, 2)
        return Scraped(namespace, stable, canary, stable_server, canary_server)

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
