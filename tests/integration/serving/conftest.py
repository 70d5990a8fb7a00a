"""Serving level: a tiny model, a LoRA adapter that really changes it, and ``kubetune serve`` processes.

Every server is a real subprocess (``python -m kubetune.serving``) on a free 127.0.0.1 port,
started all at once at the beginning of the session (they load in parallel) and waited for by
polling ``/health`` with a deadline. They differ only in flags:

- ``server``: base model + adapter ``support``, small token limits (64 input / 128 total);
- ``faulty_server``: configured only through environment variables (TGI's ``MODEL_ID``, ``PORT``,
  ``HOSTNAME``... and ``KUBETUNE_FAULT_*``): half the requests fail, each gets 100 ms more;
- ``overload_server``: one concurrent request allowed, each held 2 s by injected latency;
- ``quantized_server``: ``--quantize bitsandbytes`` (int8 on CPU), ``--api-key`` and a small
  ``--payload-limit``.
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
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ADAPTER = "support"
API_KEY = "s3cret"
MAX_INPUT_TOKENS = 64
MAX_TOTAL_TOKENS = 128
START_DEADLINE_S = 180.0

_WORDS = [
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
    "customers",
    "ask",
    "how",
    "to",
    "reset",
    "a",
    "password",
    "change",
    "an",
    "email",
    "address",
    "or",
    "close",
    "an",
    "account",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**extra: str) -> dict[str, str]:
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
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, deadline_s: float = START_DEADLINE_S) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}", pytrace=False
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)  # polling interval, not synchronisation: the loop has a deadline
        pytest.fail(f"{self.name} not healthy after {deadline_s}s:\n{self.log()[-3000:]}", pytrace=False)

    def post(self, path: str, body: object, **kwargs: object) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, timeout=60, **kwargs)  # type: ignore[arg-type]

    def generate(self, inputs: str, **parameters: object) -> requests.Response:
        return self.post("/generate", {"inputs": inputs, "parameters": parameters})

    def metrics(self) -> str:
        response = requests.get(f"{self.url}/metrics", timeout=10)
        response.raise_for_status()
        return response.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def launch(name: str, log_dir: Path, args: list[str], env: dict[str, str], port: int | None = None) -> Server:
    """Starts a server; without ``port`` it gets a free one through ``--port``, else env sets it."""
    if port is None:
        port = free_port()
        args = [*args, "--port", str(port)]
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubetune.serving", *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return Server(name, port, proc, log_path)


def metric_value(text: str, series: str) -> float:
    """The value of one exact series line, e.g. ``tgi_request_failure{err="validation"}``; 0 if absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kubetune.trainer import tiny

    root = tmp_path_factory.mktemp("tiny")
    data = root / "train.jsonl"
    lines = []
    for i in range(200):
        words = [_WORDS[(i * 7 + k * 3) % len(_WORDS)] for k in range(12)]
        lines.append(
            json.dumps({"instruction": " ".join(words[:6]), "input": "", "output": " ".join(words[6:])})
        )
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model_dir = tiny.build(root / "model", data, vocab_size=512, max_positions=256)
    _sharpen(model_dir)
    return model_dir


def _sharpen(model_dir: Path) -> None:
    """Scales the output layer so the random model's next-token choices are decisive.

    A freshly initialised model gives almost flat logits, where batching's float noise (padding
    changes matmul shapes) could flip a greedy choice; comparisons between batched and sequential
    answers must fail only on real bugs.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        model.lm_head.weight.mul_(30.0)
    model.save_pretrained(model_dir)


@pytest.fixture(scope="session")
def adapter_dir(tiny_model: Path) -> Path:
    """A LoRA adapter whose B matrices are perturbed, so it changes the base model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    out = tiny_model.parent / "adapter-support"
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def servers(
    tiny_model: Path, adapter_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    log_dir = tmp_path_factory.mktemp("serve-logs")
    common = ["--model-id", str(tiny_model), "--hostname", "127.0.0.1", "--num-threads", "1"]
    limits = ["--max-input-tokens", str(MAX_INPUT_TOKENS), "--max-total-tokens", str(MAX_TOTAL_TOKENS)]
    faulty_port = free_port()
    started = [
        launch(
            "server",
            log_dir,
            [
                *common,
                *limits,
                "--lora-adapters",
                f"{ADAPTER}={adapter_dir}",
                "--max-concurrent-requests",
                "64",
            ],
            server_env(),
        ),
        launch(
            "faulty_server",
            log_dir,
            [],
            server_env(
                MODEL_ID=str(tiny_model),
                HOSTNAME="127.0.0.1",
                PORT=str(faulty_port),
                MAX_TOTAL_TOKENS=str(MAX_TOTAL_TOKENS),
                KUBETUNE_FAULT_ERROR_RATE="0.5",
                KUBETUNE_FAULT_LATENCY_MS="100",
                KUBETUNE_FAULT_SEED="7",
                KUBETUNE_NUM_THREADS="1",
            ),
            port=faulty_port,
        ),
        launch(
            "overload_server",
            log_dir,
            [*common, *limits, "--max-concurrent-requests", "1", "--fault-latency-ms", "2000"],
            server_env(),
        ),
        launch(
            "quantized_server",
            log_dir,
            [*common, *limits, "--quantize", "bitsandbytes", "--api-key", API_KEY, "--payload-limit", "4096"],
            server_env(),
        ),
    ]
    by_name = {s.name: s for s in started}
    try:
        for server in started:
            server.wait_ready()
        yield by_name
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def server(servers: dict[str, Server]) -> Server:
    return servers["server"]


@pytest.fixture(scope="session")
def faulty_server(servers: dict[str, Server]) -> Server:
    return servers["faulty_server"]


@pytest.fixture(scope="session")
def overload_server(servers: dict[str, Server]) -> Server:
    return servers["overload_server"]


@pytest.fixture(scope="session")
def quantized_server(servers: dict[str, Server]) -> Server:
    return servers["quantized_server"]
