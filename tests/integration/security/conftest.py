"""Security level: the hostile tenant, played against real servers, processes and control plane.

Each test attempts something a namespace's user must not achieve through kubetune objects and
checks that it is refused or contained. Fixtures here only find the real binaries a test needs
and skip without them, unless the matching ``KUBETUNE_REQUIRE_*`` variable makes that an error.
"""

from __future__ import annotations

import os

import pytest

from kubetune.testing import prometheus, promlabelproxy


def _missing(why: str, require: str) -> None:
    if os.environ.get(require):
        pytest.fail(f"{require} is set but {why}", pytrace=False)
    pytest.skip(f"{why} (set {require}=1 to make this an error)")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The test Prometheus (Debian package ``prometheus``)."""
    why = prometheus.prometheus_available()
    if why is not None:
        _missing(why, "KUBETUNE_REQUIRE_PROMETHEUS")
    return prometheus.PROMETHEUS_BIN


@pytest.fixture(scope="session")
def prom_label_proxy_binary() -> str:
    """prom-label-proxy built from Go modules by hack/build-prom-label-proxy.sh."""
    binary = promlabelproxy.find_binary()
    if binary is None:
        _missing(
            "prom-label-proxy is not built (run hack/build-prom-label-proxy.sh)",
            "KUBETUNE_REQUIRE_PROMETHEUS",
        )
    assert binary is not None
    return binary
