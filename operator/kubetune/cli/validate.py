"""``kubetune validate FILE...``: check manifests with the same models the operator uses.

Prints one line per problem, ``FILE:LINE: Kind/name: field.path: reason``, and exits 1 when
any exist. Unknown fields are reported as likely typos. Never raises on user input.
"""

from __future__ import annotations

import argparse
import sys

from kubetune.api import errors
from kubetune.cli import manifests


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check kubetune manifests (FineTuneJob, Adapter, ModelDeployment)",
        description=__doc__,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="YAML files or directories; - reads stdin")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problems = 0
    checked = 0
    for path in manifests.expand(args.files):
        try:
            docs = list(manifests.read(path))
        except manifests.ManifestError as exc:
            print(exc, file=sys.stdout)
            problems += 1
            continue
        if not docs:
            print(f"{path}:1: no documents found", file=sys.stdout)
            problems += 1
        for doc in docs:
            kind, found = errors.validate_manifest(doc.obj)
            if kind is None:
                continue
            checked += 1
            name = (doc.obj.get("metadata") or {}).get("name") or f"document {doc.index}"
            for problem in found:
                print(f"{doc.path}:{doc.line_of(problem.loc)}: {kind}/{name}: {problem}")
                problems += 1
            if not found and not args.quiet:
                print(f"{doc.path}:{doc.line}: {kind}/{name}: valid")
    if not args.quiet:
        print(f"{checked} object(s) checked, {problems} problem(s)", file=sys.stderr)
    return 1 if problems else 0
