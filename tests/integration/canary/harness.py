"""Canary level harness: real ``kubetune serve`` processes, a real Prometheus, a traffic splitter.

Everything the controller would have in a cluster, minus Kubernetes:

- :class:`Prometheus` runs ``/usr/bin/prometheus`` on a free 127.0.0.1 port with its own
  storage and a 1 s scrape of the targets a test writes to a ``file_sd`` file. Each target gets
  the labels Kubernetes SD relabelling would give a pod: ``namespace`` and
  ``kubetune_io_revision`` (what :func:`analysis.builtin_queries` selects on).
- :class:`Traffic` sends bounded, loopback-only ``/generate`` requests at a fixed rate from a
  background thread, ``weight`` percent of them to the canary server, and counts the answers.
- :func:`run_rollout` is the controller's loop without the controller: ``canary.analysis_due``
  -> ``observe.analysis_outcome`` against Prometheus -> ``canary.advance``, on the real clock,
  until promotion, rollback or a deadline; the traffic follows the weight it decides.

Shared by ``conftest.py`` and ``benchmarks/canary/bench.py``; it never talks to anything but
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

from kubetune.api.v1alpha1.modeldeployment import AnalysisStatus, ModelDeploymentStatus, RolloutSpec
from kubetune.clients import prometheus
from kubetune.controllers.modeldeployment import canary, observe

LOOPBACK = "127.0.0.1"
PROMETHEUS_BIN = os.environ.get("KUBETUNE_PROMETHEUS", "/usr/bin/prometheus")
START_DEADLINE_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait(what: str, ok: Callable[[], bool], deadline_s: float, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if ok():
                return
        time.sleep(0.1)  # polling interval; the loop has a deadline
    raise TimeoutError(f"{what} not ready after {deadline_s}s:\n{log()[-3000:]}")


# --- the model and its servers -------------------------------------------------------------------


def build_tiny_model(root: Path) -> Path:
    """A tiny random Llama with a trained tokenizer (seconds on CPU)."""
    from kubetune.trainer import tiny

    root.mkdir(parents=True, exist_ok=True)
    data = root / "train.jsonl"
    words = [
        "the",
        "support",
        "team",
        "answers",
        "billing",
        "questions",
        "about",
        "invoices",
        "refunds",
        "and",
        "plans",
    ]
    lines = [
        json.dumps(
            {"instruction": " ".join(words[i % 5 : i % 5 + 4]), "input": "", "output": " ".join(words)}
        )
        for i in range(60)
    ]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tiny.build(root / "model", data, vocab_size=256, max_positions=128)


@dataclasses.dataclass
class Server:
    """A ``kubetune serve`` subprocess on 127.0.0.1."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, deadline_s: float = START_DEADLINE_S) -> None:
        def ok() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200

        _wait(self.name, ok, deadline_s, self.log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def launch_server(name: str, model: Path, log_dir: Path, *extra: str) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBETUNE_FAULT_", "LORA_", "MAX_"))}
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1"
    )
    args = ["--model-id", str(model), "--hostname", LOOPBACK, "--port", str(port), "--num-threads", "1"]
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubetune.serving", *args, *extra],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return Server(name, port, proc, log_path)


# --- Prometheus ----------------------------------------------------------------------------------


class Prometheus:
    """A Prometheus process scraping the targets written by :meth:`set_targets` every second."""

    def __init__(self, workdir: Path, port: int | None = None, binary: str = PROMETHEUS_BIN) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.binary = binary
        self.targets_file = workdir / "targets.json"
        self.config_file = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.set_targets({})
        self.config_file.write_text(
            json.dumps(  # JSON is YAML; no PyYAML needed to write it
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "kubetune-serve",
                            "file_sd_configs": [
                                {"files": [str(self.targets_file)], "refresh_interval": "1s"}
                            ],
                        }
                    ],
                },
                indent=2,
            ),
            encoding="utf-8",
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self, timeout_s: float = 2.0) -> prometheus.Client:
        return prometheus.Client(self.url, timeout_s=timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, deadline_s: float = 60.0) -> None:
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address={LOOPBACK}:{self.port}",
                    "--web.enable-lifecycle",
                    "--log.level=warn",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{self.log()[-3000:]}")
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        _wait("prometheus", ready, deadline_s, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def set_targets(self, targets: dict[str, dict[str, str]]) -> None:
        """Replace the scraped targets: ``{"127.0.0.1:port": {"namespace": ..., ...}}``."""
        groups = [{"targets": [address], "labels": labels} for address, labels in targets.items()]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups), encoding="utf-8")
        tmp.replace(self.targets_file)  # atomic: Prometheus never reads half a file

    def wait_scraped(self, namespace: str, count: int, deadline_s: float = 30.0) -> None:
        """Until ``count`` targets of ``namespace`` are up (file_sd and the first scrape done)."""
        client = self.client()
        query = f'count(up{{namespace="{namespace}"}} == 1)'

        def ok() -> bool:
            try:
                return client.query(query) == count
            except prometheus.PrometheusUnreachable:
                return False

        _wait(f"{count} targets in {namespace}", ok, deadline_s, self.log)


def label(server: Server, namespace: str, revision: str) -> dict[str, dict[str, str]]:
    """file_sd entry for a pod of ``revision`` in ``namespace``, as Kubernetes SD relabelling makes it."""
    return {server.address: {"namespace": namespace, "kubetune_io_revision": revision}}


# --- traffic -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Counts:
    ok: int = 0
    failed: int = 0


class Traffic:
    """``rate`` requests/s, ``weight`` % to the canary (deterministic split), at most ``limit`` in all."""

    def __init__(
        self, stable: Server, canary_server: Server, rate: float = 20.0, limit: int = 20_000, workers: int = 8
    ) -> None:
        self.servers = {"stable": stable, "canary": canary_server}
        self.rate = rate
        self.limit = limit
        self.weight = 0
        self.sent = 0
        self.skipped = 0  # ticks dropped because every worker was busy (bounds concurrency)
        self.counts = {"stable": Counts(), "canary": Counts()}
        self.first_canary_failure: float | None = None  # time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="traffic")
        self._slots = threading.Semaphore(workers)
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._http = requests.Session()

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def snapshot(self) -> dict[str, Counts]:
        with self._lock:
            return {k: dataclasses.replace(v) for k, v in self.counts.items()}

    def _run(self) -> None:
        credit = 0.0
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set() and self.sent < self.limit:
            credit += self.weight / 100.0
            target = "stable"
            if credit >= 1.0:
                credit -= 1.0
                target = "canary"
            if self._slots.acquire(blocking=False):
                self.sent += 1
                self._pool.submit(self._send, target)
            else:
                self.skipped += 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, target: str) -> None:
        try:
            server = self.servers[target]
            body = {"inputs": "the support team", "parameters": {"max_new_tokens": 4, "do_sample": False}}
            try:
                ok = self._http.post(f"{server.url}/generate", json=body, timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            with self._lock:
                c = self.counts[target]
                if ok:
                    c.ok += 1
                else:
                    c.failed += 1
                    if target == "canary" and self.first_canary_failure is None:
                        self.first_canary_failure = time.monotonic()
        finally:
            self._slots.release()


# --- the controller's loop -----------------------------------------------------------------------


@dataclasses.dataclass
class Analysis:
    at: float  # seconds since the rollout started
    outcome: canary.AnalysisOutcome
    weight: int


@dataclasses.dataclass
class Rollout:
    """What a run did: every analysis, the final status, when it ended."""

    status: ModelDeploymentStatus
    analyses: list[Analysis] = dataclasses.field(default_factory=list)
    events: list[canary.Event] = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.monotonic)
    ended: float | None = None
    end_counts: dict[str, Counts] = dataclasses.field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.status.phase == "Healthy" and self.status.canary_revision is None

    @property
    def rolled_back(self) -> bool:
        return self.status.phase == "RolledBack"

    def actions(self) -> list[str]:
        return [h.action for h in self.status.history]

    def describe(self) -> str:
        lines = [
            f"phase {self.status.phase}, weight {self.status.canary_weight}, step {self.status.current_step}"
        ]
        for a in self.analyses:
            o = a.outcome
            checks = "; ".join(
                f"{m.name}={m.verdict} c={m.canary} s={m.stable} n={m.samples} {m.message}" for m in o.metrics
            )
            lines.append(
                f"  t={a.at:5.1f}s w={a.weight:3d} {o.verdict} reachable={o.reachable} {o.message} | {checks}"
            )
        lines += [f"  event {e.reason}: {e.message}" for e in self.events]
        return "\n".join(lines)


def run_rollout(
    rollout: RolloutSpec,
    *,
    prom: Prometheus,
    traffic: Traffic,
    namespace: str,
    stable: str,
    canary_rev: str,
    deadline_s: float,
    tick_s: float = 0.25,
    on_tick: Callable[[Rollout], bool] | None = None,
) -> Rollout:
    """Reconcile every ``tick_s`` like the controller would, until promoted, rolled back, deadline
    or ``on_tick`` returns True. Traffic follows the decided canary weight."""
    client = prom.client()
    run = Rollout(ModelDeploymentStatus(phase="Healthy", stable_revision=stable, analysis=AnalysisStatus()))
    deadline = run.started + deadline_s
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        outcome = None
        if canary.analysis_due(rollout, run.status, now):
            outcome = observe.analysis_outcome(
                rollout.analysis,
                namespace=namespace,
                canary=canary_rev,
                stable=stable,
                query=functools.partial(client.query, at=now.timestamp()),
            )
            run.analyses.append(Analysis(time.monotonic() - run.started, outcome, run.status.canary_weight))
        decision = canary.advance(
            rollout, run.status, canary.Observed(desired_revision=canary_rev, canary_ready=True), now, outcome
        )
        run.status = decision.status
        run.events += decision.events
        live = run.status.canary_revision is not None and run.status.phase in ("Progressing", "Paused")
        traffic.weight = run.status.canary_weight if live else 0
        if run.promoted:
            traffic.weight = 100  # the canary is the stable revision now
        if run.promoted or run.rolled_back or (on_tick is not None and on_tick(run)):
            break
        time.sleep(tick_s)
    run.ended = time.monotonic()
    run.end_counts = traffic.snapshot()
    return run


def prometheus_available() -> str | None:
    """None when the binary is there, else why not."""
    if shutil.which(PROMETHEUS_BIN) is None:
        return f"{PROMETHEUS_BIN} not found (apt-get install prometheus, or set KUBETUNE_PROMETHEUS)"
    return None
