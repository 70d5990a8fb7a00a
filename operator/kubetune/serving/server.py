"""The serving process: load the engine, wire the runtime, listen, drain on SIGTERM.

:func:`build` turns a :class:`config.ServeConfig` into a ready :class:`runtime.Runtime` (the model and
adapters loaded, limits resolved, the batcher thread started); :func:`serve` binds the socket
itself (so a taken port is a one-line error, not a traceback) and runs uvicorn until a signal,
letting in-flight requests finish within ``--graceful-termination-timeout``. Expected problems
raise :class:`StartupError` with one line for the user; the CLI prints it and exits 1.
"""

from __future__ import annotations

import logging
import os
import socket

from kubetune import logs
from kubetune.serving import app, config, engine, faults, metrics, quantize, validation
from kubetune.serving.batcher import Batcher, Budget
from kubetune.serving.inference import Inference
from kubetune.serving.runtime import Runtime

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Start-up failed for a reason the user can fix; the message is one line."""


def build(cfg: config.ServeConfig) -> Runtime:
    try:
        quantize.check(cfg.quantize)
        if cfg.num_threads is not None:
            engine.set_threads(cfg.num_threads)
        loaded = engine.Engine.load(cfg.model_id, cfg.lora_adapters, cfg.quantize, cfg.dtype)
        limits = config.resolve_limits(cfg, loaded.context_length)
    except (quantize.QuantizeError, engine.LoadError, config.ConfigError) as exc:
        raise StartupError(str(exc)) from None
    recorder = metrics.TgiMetrics(limits.max_input_tokens, limits.max_total_tokens)
    budget = Budget(
        cfg.max_batch_size,
        limits.max_batch_prefill_tokens,
        limits.max_batch_total_tokens,
        cfg.waiting_served_ratio,
        cfg.max_waiting_tokens,
    )
    batcher = Batcher(loaded, budget, recorder)
    rules = validation.Rules(
        max_input_tokens=limits.max_input_tokens,
        max_total_tokens=limits.max_total_tokens,
        max_stop_sequences=cfg.max_stop_sequences,
        max_top_n_tokens=cfg.max_top_n_tokens,
        max_best_of=cfg.max_best_of,
        adapters=frozenset(loaded.adapters),
    )
    injector = faults.Faults(cfg.fault_error_rate, cfg.fault_latency_ms, cfg.fault_seed)
    inference = Inference(loaded, batcher, recorder, injector, rules, cfg.max_concurrent_requests)
    batcher.start()
    return Runtime(cfg, limits, loaded, inference, recorder, os.environ.get("COMPUTE_TYPE") or "cpu")


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _drop_color(record: logging.LogRecord) -> bool:
    record.__dict__.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return True


def serve(runtime: Runtime) -> int:
    import uvicorn

    logging.getLogger("uvicorn.error").addFilter(_drop_color)

    cfg = runtime.config
    sock = bind(cfg.hostname, cfg.port)
    server = uvicorn.Server(
        uvicorn.Config(
            app.create_app(runtime),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=cfg.graceful_termination_timeout,
        )
    )
    fields = logs.fields(
        hostname=cfg.hostname,
        port=sock.getsockname()[1],
        model_id=cfg.model_id,
        adapters=list(runtime.engine.adapters),
        quantize=cfg.quantize,
        dtype=runtime.engine.dtype,
        threads=engine.threads(),
        max_input_tokens=runtime.limits.max_input_tokens,
        max_total_tokens=runtime.limits.max_total_tokens,
        max_batch_size=cfg.max_batch_size,
        max_concurrent_requests=cfg.max_concurrent_requests,
        fault_error_rate=cfg.fault_error_rate,
        fault_latency_ms=cfg.fault_latency_ms,
    )
    log.info("serving", extra=fields)
    try:
        server.run(sockets=[sock])
    finally:
        runtime.inference.batcher.stop()
        sock.close()
    log.info("stopped")
    return 0
