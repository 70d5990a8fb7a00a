"""The serving process from its command line, for ``kubetune serve`` and ``python -m kubetune.serving``.

:func:`run` checks the flags (a wrong value fails before the slow imports), sets up logging,
builds the runtime and serves; start-up problems (bad flag, missing model, GPU-only
``--quantize``) print one line and return 1. :func:`main` parses the flags itself, so the
serving package runs without the CLI (which only registers the ``serve`` subcommand). Must
not import :mod:`kubetune.cli`.
"""

from __future__ import annotations

import argparse
import sys

from kubetune import logs
from kubetune.serving import config, quantize

DESCRIPTION = """\
A TGI-compatible HTTP runtime (transformers + peft) for local mode and CI.

Same flags and environment variables as ``text-generation-launcher`` where they apply
(``--model-id``, ``--lora-adapters``/``LORA_ADAPTERS``, ``--max-*``, ``--quantize``, ``PORT`` ...),
plus ``--fault-error-rate`` and ``--fault-latency-ms`` to make a deliberately bad canary. Start-up
problems (bad flag, missing model, GPU-only ``--quantize``) print one line and exit 1.
"""


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
    parser = argparse.ArgumentParser(prog="kubetune serve", description=DESCRIPTION)
    config.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
