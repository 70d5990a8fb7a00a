"""Entry point of the ``kubetune`` command: builds the parser from the subcommand modules.

A subcommand returns an exit code. Expected user errors are raised as :class:`UserError` (or
handled inside the subcommand) and printed as one line; only bugs produce a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import kubetune

# Subcommand modules (kubetune.cli.<name>); each has register(subparsers). Optional ones may be absent in a
# partial install (e.g. without the trainer extra) and are skipped with no error.
_SUBCOMMANDS = (
    "validate",
    "run",
    "registry",
    "serve",
    "verify",
    "loraconfig",
    "operator",
    "status",
    "review",
)


class UserError(Exception):
    """A mistake the user can fix; printed as ``kubetune: <message>`` with exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubetune",
        description="Fine-tune and ship models on Kubernetes, or locally with the same spec.",
    )
    parser.add_argument("--version", action="version", version=f"kubetune {kubetune.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(f"kubetune.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("kubetune.cli."):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except UserError as exc:
        print(f"kubetune: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kubetune: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
