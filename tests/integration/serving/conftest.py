"""Serving level: a tiny model, a LoRA adapter that really changes it, and ``kubetune serve`` processes.

Every server is a real subprocess (``python -m kubetune.serving``, launched by
:mod:`kubetune.testing.servers`) on a free 127.0.0.1 port, started all at once at the beginning
of the session (they load in parallel) and waited for by polling ``/health`` with a deadline. They differ only in flags:

- ``server``: base model + adapter ``support``, small token limits (64 input / 128 total);
- ``faulty_server``: configured only through environment variables (TGI's ``MODEL_ID``, ``PORT``,
  ``HOSTNAME``... and ``KUBETUNE_FAULT_*``): half the requests fail, each gets 100 ms more;
- ``overload_server``: one concurrent request allowed, each held 2 s by injected latency;
- ``quantized_server``: ``--quantize bitsandbytes`` (int8 on CPU), ``--api-key`` and a small
  ``--payload-limit``.

``fresh_server`` is the exception: started for one test only, so the test sees its ``/metrics``
before any request (series that appear on first use cannot be checked on a shared server).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetune.testing.servers import Server, free_port, launch, server_env

ADAPTER = "support"
API_KEY = "s3cret"
MAX_INPUT_TOKENS = 64
MAX_TOTAL_TOKENS = 128

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


@pytest.fixture
def fresh_server(tiny_model: Path, tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own that has served nothing yet."""
    args = ["--model-id", str(tiny_model), "--hostname", "127.0.0.1", "--num-threads", "1"]
    server = launch("fresh_server", tmp_path, args, server_env())
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
