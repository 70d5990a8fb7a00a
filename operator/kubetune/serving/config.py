"""Flags of ``kubetune serve``: TGI's launcher options (same names, same env variables) plus faults.

Precedence is flag, then environment variable, then default, as in ``text-generation-launcher``
(every flag has an upper-snake env form: ``--max-concurrent-requests`` is
``MAX_CONCURRENT_REQUESTS``). kubetune's own fault-injection flags read ``KUBETUNE_FAULT_*``.

This module only parses and checks option values; it loads nothing and must not import torch.
Mistakes raise :class:`ConfigError` with a one-line message naming the flag and the fix.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubetune.api.v1alpha1 import modeldeployment

# TGI's --quantize values, declared once with the ModelDeployment API.
QUANTIZE_VALUES: tuple[str, ...] = typing.get_args(modeldeployment.TGI_QUANTIZE)
DTYPE_VALUES = ("float16", "bfloat16", "float32")


class ConfigError(Exception):
    """A flag value the user can fix; printed as one line, exit code 1."""


@dataclasses.dataclass(frozen=True)
class Option:
    flag: str
    env: str
    kind: Callable[[str], Any]
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


OPTIONS: tuple[Option, ...] = (
    Option(
        "--model-id",
        "MODEL_ID",
        str,
        None,
        "local directory holding a model in save_pretrained layout (required)",
    ),
    Option(
        "--hostname",
        "HOSTNAME",
        str,
        "0.0.0.0",
        "address to listen on (TGI reads HOSTNAME too; default 0.0.0.0)",
    ),
    Option("--port", "PORT", int, 3000, "port to listen on (default 3000; TGI's Docker image sets PORT=80)"),
    Option(
        "--lora-adapters",
        "LORA_ADAPTERS",
        str,
        None,
        "comma-separated adapters: alias=/local/path, or a local directory (its path is its id)",
    ),
    Option(
        "--quantize",
        "QUANTIZE",
        str,
        None,
        "TGI's quantize values; on CPU only bitsandbytes (int8)",
        QUANTIZE_VALUES,
    ),
    Option("--dtype", "DTYPE", str, None, "weights dtype (default float32 on CPU)", DTYPE_VALUES),
    Option(
        "--max-concurrent-requests", "MAX_CONCURRENT_REQUESTS", int, 128, "in-flight requests before HTTP 429"
    ),
    Option("--max-best-of", "MAX_BEST_OF", int, 2, "largest best_of a request may ask for"),
    Option("--max-stop-sequences", "MAX_STOP_SEQUENCES", int, 4, "most stop sequences per request"),
    Option("--max-top-n-tokens", "MAX_TOP_N_TOKENS", int, 5, "largest top_n_tokens a request may ask for"),
    Option(
        "--max-input-tokens", "MAX_INPUT_TOKENS", int, None, "longest prompt in tokens (default: context - 1)"
    ),
    Option(
        "--max-total-tokens",
        "MAX_TOTAL_TOKENS",
        int,
        None,
        "per-request budget of prompt tokens + max_new_tokens (default: the model's context, at most 4096)",
    ),
    Option(
        "--max-batch-prefill-tokens",
        "MAX_BATCH_PREFILL_TOKENS",
        int,
        None,
        "prompt tokens per batch (default: max input + 50)",
    ),
    Option(
        "--max-batch-total-tokens",
        "MAX_BATCH_TOTAL_TOKENS",
        int,
        None,
        "token budget of one batch (default: 32 x max total)",
    ),
    Option("--max-batch-size", "MAX_BATCH_SIZE", int, 32, "requests per batch"),
    Option(
        "--waiting-served-ratio",
        "WAITING_SERVED_RATIO",
        float,
        1.2,
        "waiting/running requests ratio at which waiting requests join a decoding batch",
    ),
    Option(
        "--max-waiting-tokens",
        "MAX_WAITING_TOKENS",
        int,
        20,
        "decode steps after which waiting requests join a decoding batch anyway",
    ),
    Option("--max-client-batch-size", "MAX_CLIENT_BATCH_SIZE", int, 4, "prompts per /v1/completions request"),
    Option(
        "--payload-limit", "PAYLOAD_LIMIT", int, 2_000_000, "largest request body in bytes (HTTP 413 above)"
    ),
    Option("--api-key", "API_KEY", str, None, "require 'Authorization: Bearer KEY' on inference routes"),
    Option(
        "--validation-workers", "VALIDATION_WORKERS", int, 2, "reported in /info (validation runs inline)"
    ),
    Option(
        "--graceful-termination-timeout",
        "GRACEFUL_TERMINATION_TIMEOUT",
        int,
        90,
        "seconds to drain on SIGTERM",
    ),
    Option(
        "--prometheus-port",
        "PROMETHEUS_PORT",
        int,
        9000,
        "accepted for TGI compatibility; scrape /metrics on --port",
    ),
    Option(
        "--usage-stats",
        "USAGE_STATS",
        str,
        "off",
        "accepted for TGI compatibility; nothing is sent",
        ("on", "off", "no-stack"),
    ),
    Option(
        "--json-output",
        "JSON_OUTPUT",
        _bool,
        True,
        "accepted for TGI compatibility; logs are always JSON lines",
    ),
    Option(
        "--num-threads",
        "KUBETUNE_NUM_THREADS",
        int,
        None,
        "torch threads for the model (default: OMP_NUM_THREADS, else one per core); "
        "1 is often fastest for small models on a busy CPU",
    ),
    Option("--log-level", "LOG_LEVEL", str, "info", "log level (debug, info, warning, error)"),
    Option(
        "--fault-error-rate",
        "KUBETUNE_FAULT_ERROR_RATE",
        float,
        0.0,
        "share of requests answered HTTP 500 (0..1), for canary tests",
    ),
    Option(
        "--fault-latency-ms",
        "KUBETUNE_FAULT_LATENCY_MS",
        float,
        0.0,
        "milliseconds added to every request, for canary tests",
    ),
    Option(
        "--fault-seed",
        "KUBETUNE_FAULT_SEED",
        int,
        None,
        "seed of the fault injector's random draws (default: random)",
    ),
)


@dataclasses.dataclass(frozen=True)
class Adapter:
    """One entry of LORA_ADAPTERS: the id requests use and the directory it is loaded from."""

    name: str
    path: Path


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    model_id: str
    hostname: str = "0.0.0.0"
    port: int = 3000
    lora_adapters: tuple[Adapter, ...] = ()
    quantize: str | None = None
    dtype: str | None = None
    max_concurrent_requests: int = 128
    max_best_of: int = 2
    max_stop_sequences: int = 4
    max_top_n_tokens: int = 5
    max_input_tokens: int | None = None
    max_total_tokens: int | None = None
    max_batch_prefill_tokens: int | None = None
    max_batch_total_tokens: int | None = None
    max_batch_size: int = 32
    waiting_served_ratio: float = 1.2
    max_waiting_tokens: int = 20
    max_client_batch_size: int = 4
    payload_limit: int = 2_000_000
    api_key: str | None = None
    validation_workers: int = 2
    graceful_termination_timeout: int = 90
    prometheus_port: int = 9000
    usage_stats: str = "off"
    json_output: bool = True
    num_threads: int | None = None
    log_level: str = "info"
    fault_error_rate: float = 0.0
    fault_latency_ms: float = 0.0
    fault_seed: int | None = None


@dataclasses.dataclass(frozen=True)
class Limits:
    """Token limits once the model's context length is known."""

    max_input_tokens: int
    max_total_tokens: int
    max_batch_prefill_tokens: int
    max_batch_total_tokens: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds every option; defaults stay None so that :func:`from_namespace` can apply env values."""
    for option in OPTIONS:
        default_text = "" if option.default is None else f" [env {option.env}, default {option.default}]"
        if option.default is None:
            default_text = f" [env {option.env}]"
        parser.add_argument(
            option.flag,
            dest=option.dest,
            default=None,
            metavar=option.dest.upper() if option.choices is None else None,
            choices=option.choices,
            type=option.kind if option.kind is not _bool else _bool,
            help=option.help + default_text,
        )


def from_namespace(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """Flag, else env variable, else default; then cross-field checks. Raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(args, option.dest, None)
        if value is None and env.get(option.env, "") != "":
            raw = env[option.env]
            try:
                value = option.kind(raw)
            except ValueError:
                raise ConfigError(f"{option.env}={raw!r} is not a valid value for {option.flag}") from None
            if option.choices is not None and value not in option.choices:
                raise ConfigError(
                    f"{option.env}={raw!r}: {option.flag} takes one of {', '.join(option.choices)}"
                )
        values[option.dest] = option.default if value is None else value
    if not values["model_id"]:
        raise ConfigError("--model-id (or MODEL_ID) is required: a local directory in save_pretrained layout")
    values["lora_adapters"] = parse_adapters(values["lora_adapters"])
    config = ServeConfig(**values)
    check(config)
    return config


def parse_adapters(spec: str | None) -> tuple[Adapter, ...]:
    """``alias=/path,other=/path2,/path3``: TGI's LORA_ADAPTERS forms that work without a hub."""
    if not spec:
        return ()
    adapters: list[Adapter] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if "=" in item:
            name, _, path = item.partition("=")
            name, path = name.strip(), path.strip()
            if not name or not path:
                raise ConfigError(f"--lora-adapters entry {item!r}: expected alias=/local/path")
        else:
            name, path = item, item
            if not Path(path).is_dir():
                raise ConfigError(
                    f"--lora-adapters entry {item!r}: hub adapter ids cannot be downloaded here; "
                    "give a local directory as alias=/local/path"
                )
        if any(a.name == name for a in adapters):
            raise ConfigError(f"--lora-adapters: adapter id {name!r} is given twice")
        adapters.append(Adapter(name=name, path=Path(path)))
    return tuple(adapters)


def check(config: ServeConfig) -> None:
    if config.dtype is not None and config.quantize is not None:
        raise ConfigError("--dtype cannot be combined with --quantize")
    for name in ("max_concurrent_requests", "max_batch_size", "max_client_batch_size", "payload_limit"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("max_best_of", "max_stop_sequences", "max_top_n_tokens"):
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
    if config.num_threads is not None and config.num_threads < 1:
        raise ConfigError("--num-threads must be at least 1")
    if config.waiting_served_ratio < 0 or config.max_waiting_tokens < 0:
        raise ConfigError("--waiting-served-ratio and --max-waiting-tokens must not be negative")
    if not 0.0 <= config.fault_error_rate <= 1.0:
        raise ConfigError(f"--fault-error-rate must be between 0 and 1, got {config.fault_error_rate}")
    if config.fault_latency_ms < 0:
        raise ConfigError(f"--fault-latency-ms must not be negative, got {config.fault_latency_ms}")
    if not 0 < config.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {config.port}")


def resolve_limits(config: ServeConfig, context_length: int) -> Limits:
    """TGI's defaults and launcher checks, given the model's ``max_position_embeddings``."""
    total = config.max_total_tokens
    max_input = config.max_input_tokens
    if total is None:
        total = (
            min(context_length, 4096) if max_input is None else max(max_input + 1, min(context_length, 4096))
        )
    if max_input is None:
        max_input = total - 1
    if max_input < 1:
        raise ConfigError("--max-input-tokens must be at least 1")
    if max_input >= total:
        raise ConfigError(
            f"`max_input_tokens` must be < `max_total_tokens` (given {max_input} and {total}); "
            "raise --max-total-tokens or lower --max-input-tokens"
        )
    if total > context_length:
        raise ConfigError(
            f"--max-total-tokens {total} exceeds the model's context length ({context_length} positions)"
        )
    prefill = (
        config.max_batch_prefill_tokens if config.max_batch_prefill_tokens is not None else max_input + 50
    )
    if prefill < max_input:
        raise ConfigError(
            f"`max_batch_prefill_tokens` must be >= `max_input_tokens` (given {prefill} and {max_input})"
        )
    batch_total = config.max_batch_total_tokens
    if batch_total is None:
        batch_total = total * config.max_batch_size
    if batch_total < total:
        raise ConfigError(
            f"`max_batch_total_tokens` must be >= `max_total_tokens` (given {batch_total} and {total})"
        )
    return Limits(max_input, total, prefill, batch_total)
