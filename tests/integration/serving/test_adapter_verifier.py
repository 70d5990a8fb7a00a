"""``kubetune verify-adapters`` against a real ``kubetune serve``: loaded adapters pass, others don't."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kubetune.testing.servers import Server, free_port

from .conftest import ADAPTER


@contextlib.contextmanager
def verifier(server: Server, adapters: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / f"verifier-{port}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubetune.cli.main",
            "verify-adapters",
            "--url",
            server.url,
            "--listen",
            f"127.0.0.1:{port}",
            "--adapters",
            adapters,
            "--prompt",
            "the quick",
            "--every",
            "0.5",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}/verified"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def poll(url: str, want: int, reason: str = "", deadline_s: float = 60) -> dict[str, object]:
    """Poll until the probe answers ``want`` with ``reason`` in its body (the first check may not have run)."""
    deadline = time.monotonic() + deadline_s
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            resp = requests.get(url, timeout=5)
            last = resp.json()
            if resp.status_code == want and reason in str(last.get("reason")):
                return last
        time.sleep(0.2)  # polling with a deadline
    pytest.fail(f"{url} never answered {want} with {reason!r}; last body {last}", pytrace=False)


def test_loaded_adapter_is_verified(server: Server, tmp_path: Path) -> None:
    with verifier(server, ADAPTER, tmp_path) as url:
        body = poll(url, 200)
    assert body == {"verified": True, "reason": "1 adapter(s) verified"}


def test_adapter_that_is_not_loaded_keeps_the_probe_failing(server: Server, tmp_path: Path) -> None:
    with verifier(server, f"{ADAPTER},not-loaded", tmp_path) as url:
        body = poll(url, 503, reason="adapter not-loaded")
        assert body["verified"] is False
        time.sleep(1.5)  # a few more check rounds: it must stay unverified
        assert requests.get(url, timeout=5).status_code == 503
