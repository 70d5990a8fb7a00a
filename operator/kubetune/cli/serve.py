"""``kubetune serve``: a TGI-compatible HTTP runtime (transformers + peft) for local mode and CI.

Registers the subcommand only; the process itself is :mod:`kubetune.serving.command`, which
``python -m kubetune.serving`` runs without the CLI.
"""

from __future__ import annotations

import argparse

from kubetune.serving import command, config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model and LoRA adapters over TGI's HTTP API (CPU)",
        description=command.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_arguments(parser)
    parser.set_defaults(func=command.run)
