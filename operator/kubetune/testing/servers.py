"""``kubetune serve`` subprocesses on 127.0.0.1, and the tiny model they serve, for tests.

:func:`launch` starts ``python -m kubetune.serving`` with the given flags and environment on a
free port (or the one ``env`` names), logging to ``<log_dir>/<name>.log``; :func:`launch_model`
is the usual case (one model, one thread, extra flags). Servers load in parallel: launch them
all, then call :meth:`Server.wait_ready` on each, which polls ``/health`` with a deadline and
fails at once, quoting the log, when the process exits. :func:`build_tiny_model` writes a tiny
random Llama with a trained tokenizer in seconds on CPU.

Used by the serving and canary levels, ``benchmarks/canary`` and, through
:mod:`kubetune.testing.prometheus`, by anything that scrapes a server. It never listens
anywhere but loopback. Pods on the test cluster run the same server through the TGI image rule
of the node agent, not through this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

LOOPBACK = "127.0.0.1"
START_DEADLINE_S = 180.0

_TINY_WORDS = [
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


class ServerFailed(RuntimeError):
    """A server exited or never became healthy; the message quotes the end of its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment without server settings (``KUBETUNE_FAULT_*``, ``LORA_*``,
    ``MAX_*``), offline, one thread per library, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBETUNE_FAULT_", "LORA_", "MAX_"))}
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1"
    )
    env.update(extra)
    return env


@dataclasses.dataclass
class Server:
    """A ``kubetune serve`` subprocess and a few helpers to talk to it."""

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
        """Until ``/health`` answers 200; :class:`ServerFailed` if the process exits or time runs out."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)  # polling interval, not synchronisation: the loop has a deadline
        raise ServerFailed(f"{self.name} not healthy after {deadline_s}s:\n{self.log()[-3000:]}")

    def post(self, path: str, body: object, **kwargs: object) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, timeout=60, **kwargs)  # type: ignore[arg-type]

    def generate(self, inputs: str, **parameters: object) -> requests.Response:
        return self.post("/generate", {"inputs": inputs, "parameters": parameters})

    def metrics(self) -> str:
        response = requests.get(f"{self.url}/metrics", timeout=10)
        response.raise_for_status()
        return response.text

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; a no-op when it already exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def launch(
    name: str, log_dir: Path, args: list[str], env: dict[str, str] | None = None, port: int | None = None
) -> Server:
    """Start a server with ``args``; without ``port`` it gets a free one through ``--port``, else
    ``env`` must set it (``PORT``). ``env`` defaults to :func:`server_env`."""
    if port is None:
        port = free_port()
        args = [*args, "--port", str(port)]
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubetune.serving", *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=server_env() if env is None else env,
        )
    return Server(name, port, proc, log_path)


def launch_model(name: str, model: Path, log_dir: Path, *extra: str) -> Server:
    """Serve ``model`` on 127.0.0.1 with one thread, plus ``extra`` flags."""
    args = ["--model-id", str(model), "--hostname", LOOPBACK, "--num-threads", "1", *extra]
    return launch(name, log_dir, args)


def build_tiny_model(root: Path) -> Path:
    """A tiny random Llama with a trained tokenizer under ``root/model`` (seconds on CPU)."""
    from kubetune.trainer import tiny

    root.mkdir(parents=True, exist_ok=True)
    data = root / "train.jsonl"
    words = _TINY_WORDS
    lines = [
        json.dumps(
            {"instruction": " ".join(words[i % 5 : i % 5 + 4]), "input": "", "output": " ".join(words)}
        )
        for i in range(60)
    ]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tiny.build(root / "model", data, vocab_size=256, max_positions=128)
