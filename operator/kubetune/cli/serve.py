"""``kubetune serve``: a TGI-compatible HTTP runtime (transformers + peft) for local mode and CI.

Same flags and environment variables as ``text-generation-launcher`` where they apply
(``--model-id``, ``--lora-adapters``/``LORA_ADAPTERS``, ``--max-*``, ``--quantize``, ``PORT`` ...),
plus ``--fault-error-rate`` and ``--fault-latency-ms`` to make a deliberately bad canary. Start-up
problems (bad flag, missing model, GPU-only ``--quantize``) print one line and exit 1.
"""

from __future__ import annotations

import argparse
import sys

from kubetune import logs
from kubetune.serving import config, quantize


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model and LoRA adapters over TGI's HTTP API (CPU)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config.from_namespace(args)
        quantize.check(cfg.quantize)  # before the slow imports: a wrong value fails at once
    except (config.ConfigError, quantize.QuantizeError) as exc:
        print(f"kubetune serve: {exc}", file=sys.stderr)
        return 1
    logs.setup(cfg.log_level.upper())
    from kubetune.serving import server

    try:
        runtime = server.build(cfg)
        return server.serve(runtime)
    except server.StartupError as exc:
        print(f"kubetune serve: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """``python -m kubetune.serving``: the same command without the ``kubetune`` front end."""
    parser = argparse.ArgumentParser(prog="kubetune serve", description=__doc__)
    config.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
