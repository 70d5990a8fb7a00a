"""A real prom-label-proxy for tests: the platform's tenant proxy in front of a test Prometheus.

prom-label-proxy (github.com/prometheus-community/prom-label-proxy) parses each PromQL query and
enforces one label matcher on every selector. :class:`PromLabelProxy` runs it as a platform
would for kubetune (``-label namespace``: the value comes from the ``namespace`` form field,
which the operator fills with the object's namespace), on a free 127.0.0.1 port, in front of
``upstream``. The binary comes from ``hack/build-prom-label-proxy.sh`` (Go modules, cached by
version), or ``$KUBETUNE_PROM_LABEL_PROXY``; see :func:`find_binary`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import requests

from kubetune.testing.servers import LOOPBACK, free_port, stop_process
from kubetune.testing.waiting import wait_for

CACHE = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune")) / "prom-label-proxy"
LABEL = "namespace"


def find_binary() -> str | None:
    """``$KUBETUNE_PROM_LABEL_PROXY``, else the newest build in the cache; None when there is none."""
    explicit = os.environ.get("KUBETUNE_PROM_LABEL_PROXY")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    built = sorted(CACHE.glob("*/bin/prom-label-proxy"), key=lambda p: p.stat().st_mtime)
    return str(built[-1]) if built else None


class PromLabelProxy:
    """``prom-label-proxy -label namespace -upstream URL`` on 127.0.0.1 (plus ``extra`` flags)."""

    def __init__(self, binary: str, upstream: str, workdir: Path, extra: Sequence[str] = ()) -> None:
        self.binary, self.upstream, self.extra = binary, upstream, tuple(extra)
        self.port = free_port()
        self.log_path = workdir / f"prom-label-proxy-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> PromLabelProxy:
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"-label={LABEL}",
                    f"-upstream={self.upstream}",
                    f"-insecure-listen-address={LOOPBACK}:{self.port}",
                    *self.extra,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prom-label-proxy exited with {proc.returncode}:\n{self.log()[-2000:]}")
            # without the namespace parameter the proxy answers 400 itself: it is up
            return requests.get(f"{self.url}/api/v1/query", timeout=2).status_code == 400

        try:
            wait_for(listening, 20, "prom-label-proxy to listen", ignore=(requests.RequestException,))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)
