"""Canary level: real Prometheus data drives the rollout state machine, without Kubernetes.

Session fixtures: one tiny model, four ``kubetune serve`` processes started together (a stable
server and three canaries: healthy, ``--fault-error-rate 0.5``, ``--fault-latency-ms 250``) and
one Prometheus scraping whatever a test writes to its file_sd file. Each test gives its targets
a namespace of its own, so no test sees another's series. Skipped when /usr/bin/prometheus is
missing, unless KUBETUNE_REQUIRE_PROMETHEUS is set (then it is an error).
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def canary_servers(
    prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, servers.Server]]:
    model = servers.build_tiny_model(tmp_path_factory.mktemp("canary-model"))
    logs = tmp_path_factory.mktemp("canary-serve-logs")
    started = [
        servers.launch_model("stable", model, logs),
        servers.launch_model("healthy", model, logs),
        servers.launch_model("errors", model, logs, "--fault-error-rate", "0.5", "--fault-seed", "7"),
        servers.launch_model("slow", model, logs, "--fault-latency-ms", "250"),
    ]
    try:
        for server in started:
            server.wait_ready()
        yield {s.name: s for s in started}
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


@pytest.fixture
def scrape(
    prom: prometheus.Prometheus, canary_servers: dict[str, servers.Server]
) -> Callable[[str, str], tuple[str, str, str]]:
    """Scrape the stable server and one canary under a fresh namespace; (namespace, stable, canary)."""

    def start(canary_name: str, ns_hint: str) -> tuple[str, str, str]:
        suffix = uuid.uuid4().hex[:6]
        namespace, stable, canary = f"{ns_hint}-{suffix}", f"stable-{suffix}", f"canary-{suffix}"
        prom.set_targets(
            harness.label(canary_servers["stable"], namespace, stable)
            | harness.label(canary_servers[canary_name], namespace, canary)
        )
        prom.wait_scraped(namespace, 2)
        return namespace, stable, canary

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
