"""``python -m kubetune.crdgen [--out crds] [--chart-crds DIR] [--check]``: write or verify the generated CRDs.

The same files go to ``crds/`` and to the Helm chart's ``charts/kubetune/crds/`` (Helm installs
that directory before the templates and never templates it), so the chart never carries a
hand-edited copy; ``--check`` compares both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubetune.crdgen import generate, reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubetune.crdgen", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("crds"), help="output directory (default: crds)")
    parser.add_argument(
        "--chart-crds",
        type=Path,
        default=Path("charts/kubetune/crds"),
        help="the Helm chart's CRD directory, written and checked too (default: charts/kubetune/crds)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=Path("docs/reference/api.md"),
        help="API reference page to write (default: docs/reference/api.md)",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 naming each drifted file"
    )
    args = parser.parse_args(argv)
    ref_text = reference.render()
    if args.check:
        problems = generate.drift(args.out) + generate.drift(args.chart_crds)
        if not args.reference.exists() or args.reference.read_text() != ref_text:
            problems.append(f"{args.reference} is out of date with the API models")
        for problem in problems:
            print(f"crdgen: {problem}; run `make generate`", file=sys.stderr)
        if not problems:
            print(f"crdgen: {args.out} and {args.chart_crds} are up to date")
        return 1 if problems else 0
    for path in [*generate.write(args.out), *generate.write(args.chart_crds)]:
        print(f"crdgen: wrote {path}")
    args.reference.parent.mkdir(parents=True, exist_ok=True)
    args.reference.write_text(ref_text)
    print(f"crdgen: wrote {args.reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
