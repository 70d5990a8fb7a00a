"""``python -m kubetune.crdgen [--out crds] [--check]``: write or verify the generated CRDs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubetune.crdgen import generate, reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubetune.crdgen", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("crds"), help="output directory (default: crds)")
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
        problems = generate.drift(args.out)
        if not args.reference.exists() or args.reference.read_text() != ref_text:
            problems.append(f"{args.reference} is out of date with the API models")
        for problem in problems:
            print(f"crdgen: {problem}; run `make generate`", file=sys.stderr)
        if not problems:
            print(f"crdgen: {args.out} is up to date")
        return 1 if problems else 0
    for path in generate.write(args.out):
        print(f"crdgen: wrote {path}")
    args.reference.parent.mkdir(parents=True, exist_ok=True)
    args.reference.write_text(ref_text)
    print(f"crdgen: wrote {args.reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
