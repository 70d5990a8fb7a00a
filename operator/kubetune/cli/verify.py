"""``kubetune verify-adapters``: the startup-probe sidecar of a ModelDeployment pod.

TGI silently answers with the base model when an adapter failed to load, and vLLM, too, can
apply an adapter that changes nothing (a mismatched or empty one). This sidecar sends the
golden prompt to the server with each adapter and without one (TGI: ``/generate`` with
``adapter_id``; ``--api openai``, for vLLM: ``/v1/completions`` with ``"model": NAME`` and the
base model's served name), and serves
``GET /verified``: 200 once every adapter's answer differs from the base model's, 503 with the
reason until then. The pod's startup probe points at it, so a pod whose adapters did not load
never becomes Ready. Checks repeat every few seconds until they pass, then stay passed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubetune import logs
from kubetune.clients import completions, tgi

log = logging.getLogger("kubetune.verify")

Generate = Callable[[str | None], str]


@dataclass
class Verdict:
    verified: bool
    reason: str


def check(adapters: list[str], generate: Generate) -> Verdict:
    """Whether every adapter answers differently from the base model (``generate(None)``)."""
    try:
        base = generate(None)
    except tgi.TGIError as exc:
        return Verdict(False, f"base model: {exc}")
    for name in adapters:
        try:
            answer = generate(name)
        except tgi.TGIError as exc:
            return Verdict(False, f"adapter {name}: {exc}")
        if answer == base:
            return Verdict(
                False, f"adapter {name} answers exactly like the base model; it is probably not loaded"
            )
    return Verdict(True, f"{len(adapters)} adapter(s) verified")


def _write_reason(path: str, reason: str) -> None:
    # Best effort: outside Kubernetes the file may not be writable, and the probe still works.
    with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as fh:
        fh.write(reason[:4000])


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify-adapters", help="startup-probe sidecar: check that adapters really load", description=__doc__
    )
    parser.add_argument(
        "--url", default="http://127.0.0.1:8080", help="the server (default http://127.0.0.1:8080)"
    )
    parser.add_argument(
        "--listen", default="0.0.0.0:8090", help="HOST:PORT serving /verified (default 0.0.0.0:8090)"
    )
    parser.add_argument("--adapters", required=True, help="comma-separated adapter ids to check")
    parser.add_argument("--prompt", default="Hello", help="golden prompt (default Hello)")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument(
        "--api",
        choices=("tgi", "openai"),
        default="tgi",
        help="how to ask: tgi (/generate with adapter_id) or openai (/v1/completions with model)",
    )
    parser.add_argument("--base-model", default="", help="served name of the base model (--api openai)")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between checks until verified")
    parser.add_argument(
        "--termination-log",
        default="/dev/termination-log",
        help="file that always holds the latest reason, read by Kubernetes as the container's "
        "termination message when the startup probe gives up (default /dev/termination-log)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logs.setup()
    adapters = [a for a in args.adapters.split(",") if a]
    state = Verdict(False, "not checked yet")
    lock = threading.Lock()

    def generate(adapter: str | None) -> str:
        if args.api == "openai":
            model = adapter or args.base_model
            return completions.complete(args.url, args.prompt, model=model, max_tokens=args.max_new_tokens)
        return tgi.generate(args.url, args.prompt, adapter_id=adapter, max_new_tokens=args.max_new_tokens)

    def loop() -> None:
        nonlocal state
        while True:
            verdict = check(adapters, generate)
            with lock:
                changed = verdict != state
                state = verdict
            if changed:
                _write_reason(args.termination_log, verdict.reason)
                log.info(
                    "adapter verification",
                    extra=logs.fields(verified=verdict.verified, reason=verdict.reason),
                )
            if verdict.verified:
                return
            time.sleep(args.every)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                current = state
            ok = self.path.split("?")[0] in ("/verified", "/healthz") and current.verified
            body = json.dumps({"verified": current.verified, "reason": current.reason}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *a: object) -> None:  # probes every few seconds: stay quiet
            return

    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    threading.Thread(target=loop, daemon=True, name="verify").start()
    log.info("serving /verified", extra=logs.fields(listen=args.listen, adapters=adapters, url=args.url))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
