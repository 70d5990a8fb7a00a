"""``kubetune review export|import``: a blind human review of a run's held-out answers.

``export SOURCE`` reads the held-out generations a run recorded (``samples.jsonl``: the very
greedy answers its generation metrics scored, base and tuned, nothing is generated again) from
a local run directory of ``kubetune run``, or from a registered Adapter (``adapter/NAME``: its
digest-pinned artifact is pulled, which carries the same file), and writes a blind export:
``review.html`` (the page a reviewer rates), ``items.jsonl`` (the same items) and ``key.json``
(which side is tuned: keep it from reviewers). ``import RATINGS...`` checks the saved ratings
against the key, prints the win rate with its Wilson interval, and writes it to where the
samples came from: the run directory (``human-review.json`` and the model card) or the
Adapter's ``status.humanReview``. Parsing and printing here; the work is in
:mod:`kubetune.review`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetune.api.contract import samples as samples_file
from kubetune.review import blind, page, ratings

REVIEWS_DIR = Path(".kubetune") / "reviews"
REVIEW_FILE = "human-review.json"
ADAPTER_PREFIXES = ("adapter/", "adapters/", "adp/")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "review",
        help="blind human review of held-out answers: export a rating page, import the ratings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    exp = verbs.add_parser(
        "export", help="write a blind review page of a run's or Adapter's held-out answers"
    )
    exp.add_argument(
        "source",
        help="a run directory of `kubetune run` (or any directory with samples.jsonl), or adapter/NAME",
    )
    exp.add_argument("--out", type=Path, help="export directory (default ./.kubetune/reviews/EXPORT_ID)")
    exp.add_argument(
        "--seed", type=int, help="seed of the order and sides (default: random; recorded in key.json)"
    )
    exp.add_argument("--limit", type=int, metavar="N", help="review only N prompts (of the shuffled order)")
    exp.add_argument("--title", help="page title (default: the export id)")
    _cluster_args(exp)
    exp.add_argument("--insecure", action="store_true", help="pull the Adapter's artifact over plain HTTP")
    exp.set_defaults(func=export)
    imp = verbs.add_parser(
        "import", help="count saved ratings: win rate of tuned over base, into the scorecard"
    )
    imp.add_argument(
        "ratings", nargs="+", type=Path, metavar="RATINGS", help="ratings file(s) the page saved"
    )
    imp.add_argument(
        "--export",
        type=Path,
        dest="export_dir",
        help="the export's directory, with key.json (default ./.kubetune/reviews/EXPORT_ID of the ratings)",
    )
    imp.add_argument("--confidence", type=float, default=0.95, help="interval confidence (default 0.95)")
    imp.add_argument("--no-write", action="store_true", help="print the result only; write no scorecard")
    imp.add_argument("-o", "--output", choices=["text", "json"], default="text")
    imp.add_argument(
        "--kubeconfig",
        help="kubeconfig to write an Adapter's status with (default: $KUBECONFIG or ~/.kube/config)",
    )
    imp.set_defaults(func=import_ratings)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _cluster_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", help="the Adapter's namespace (default: the context's, else default)"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")


def export(args: argparse.Namespace) -> int:
    from kubetune.cli.main import UserError

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1 (got {args.limit})")
    rows, source = _samples(args)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    items, key = blind.build(rows, seed, source, args.limit)
    if not items:
        raise UserError(
            f"{source.get('runDir') or source.get('ref')}: no held-out sample has a base answer to compare "
            "(the run set evaluation.compareToBase: false, had no validation split, or predates samples "
            "with base answers); re-run it with compareToBase: true and a generation format"
        )
    out: Path = args.out or REVIEWS_DIR / key.export_id
    out.mkdir(parents=True, exist_ok=True)
    (out / blind.PAGE_FILE).write_text(page.render(items, key, args.title), encoding="utf-8")
    (out / blind.ITEMS_FILE).write_text(blind.items_jsonl(items, key), encoding="utf-8")
    (out / blind.KEY_FILE).write_text(blind.key_json(key), encoding="utf-8")
    skipped = len(rows) - len([r for r in rows if r.base is not None])
    print(f"review export {key.export_id}: {len(items)} prompts (seed {seed})")
    if skipped:
        print(f"  left out {skipped} samples without a base answer")
    print(f"  page     {out / blind.PAGE_FILE}   (send this to reviewers)")
    print(f"  items    {out / blind.ITEMS_FILE}")
    print(f"  key      {out / blind.KEY_FILE}   (which side is tuned: do not share)")
    print(
        f"then: kubetune review import ratings-{key.export_id}.json"
        + (f" --export {out}" if args.out else "")
    )
    return 0


def _samples(args: argparse.Namespace) -> tuple[list[samples_file.Sample], dict[str, Any]]:
    from kubetune.cli.main import UserError

    src: str = args.source
    if src.startswith(ADAPTER_PREFIXES):
        return _adapter_samples(args, src.split("/", 1)[1])
    directory = Path(src)
    if not directory.is_dir():
        raise UserError(f"{src}: not a directory; give a run directory of `kubetune run` or adapter/NAME")
    return _read_samples(directory / samples_file.FILENAME, src), {"runDir": str(directory.resolve())}


def _read_samples(path: Path, what: str) -> list[samples_file.Sample]:
    from kubetune.cli.main import UserError

    if not path.is_file():
        raise UserError(
            f"{what} has no {samples_file.FILENAME}: the run recorded no held-out generations (no validation "
            "split, a classification format, no generation metric in evaluation.metrics, or a run made "
            "before kubetune recorded them); re-run it to record them"
        )
    try:
        return samples_file.read(path)
    except (OSError, ValueError) as exc:
        raise UserError(str(exc)) from None


def _adapter_samples(args: argparse.Namespace, name: str) -> tuple[list[samples_file.Sample], dict[str, Any]]:
    from kubetune import registry
    from kubetune.cli.main import UserError
    from kubetune.registry import progress

    namespace, adapter = _adapter(args, name)
    ref = str((adapter.get("spec") or {}).get("ref") or "")
    if not ref:
        raise UserError(f"Adapter {namespace}/{name} has no spec.ref")
    with tempfile.TemporaryDirectory(prefix="kubetune-review-") as tmp:
        try:
            registry.pull(
                ref,
                Path(tmp) / "artifact",
                options=registry.Options(insecure=True) if args.insecure else None,
                reporter=progress.Silent(),
            )
        except registry.RegistryError as exc:
            raise UserError(f"cannot pull Adapter {namespace}/{name}'s artifact {ref}: {exc}") from None
        rows = _read_samples(
            Path(tmp) / "artifact" / samples_file.FILENAME, f"Adapter {namespace}/{name} ({ref})"
        )
    return rows, {"adapter": {"namespace": namespace, "name": name}, "ref": ref}


def _kube(args: argparse.Namespace) -> tuple[Any, str]:
    from kubetune.clients import kube as kubeclient

    kube = kubeclient.Kube.from_environment(args.kubeconfig)
    namespace = args.namespace or kubeclient.context_namespace(args.kubeconfig) or "default"
    return kube, namespace


def _adapter(args: argparse.Namespace, name: str) -> tuple[str, dict[str, Any]]:
    from kubetune.cli.main import UserError
    from kubetune.clients import kube as kubeclient

    kube, namespace = _kube(args)
    try:
        obj = kube.get(kubeclient.path("kubetune.io/v1alpha1", "Adapter", namespace, name))
    except kubeclient.ApiError as exc:
        raise UserError(f"cannot read Adapter {namespace}/{name}: {exc}") from None
    finally:
        kube.close()
    if obj is None:
        raise UserError(f"Adapter {namespace}/{name} not found (kubectl get adapters -n {namespace})")
    return namespace, obj


def import_ratings(args: argparse.Namespace) -> int:
    from kubetune.api.v1alpha1.base import rfc3339
    from kubetune.cli.main import UserError

    if not 0.5 <= args.confidence < 1:
        raise UserError(f"--confidence must be at least 0.5 and below 1 (got {args.confidence})")
    files = []
    try:
        for path in args.ratings:
            files.append((path, ratings.parse(path.read_text(encoding="utf-8"), str(path))))
        directory: Path = args.export_dir or REVIEWS_DIR / files[0][1].export_id
        key_path = directory / blind.KEY_FILE
        if not key_path.is_file():
            raise UserError(
                f"no review key at {key_path}; pass --export with the directory `kubetune review export` "
                f"wrote for export {files[0][1].export_id}"
            )
        key = blind.Key.model_validate_json(key_path.read_text(encoding="utf-8"))
        for path, r in files:
            ratings.check(r, key, str(path))
    except OSError as exc:
        raise UserError(str(exc)) from None
    except ratings.RatingsError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"{key_path} is not a review key ({exc.__class__.__name__}); export again") from None
    review = ratings.summary(
        [r for _, r in files], key, confidence=args.confidence, imported_at=rfc3339(datetime.now(UTC))
    )
    wire = review.to_wire()
    where = "not written (--no-write)" if args.no_write else _write(args, key, wire)
    if args.output == "json":
        print(json.dumps({**wire, "writtenTo": where}, indent=2))
        return 0
    n = review.wins + review.losses + review.ties
    print(
        f"win rate of tuned over base: {review.win_rate:.1%} "
        f"({review.confidence:.0%} Wilson interval {review.low:.1%} to {review.high:.1%}; ties count half)"
    )
    print(
        f"  {review.wins} tuned preferred, {review.losses} base preferred, {review.ties} ties: "
        f"{n} judgments of {review.items} prompts, {len(files)} ratings file(s)"
    )
    print(f"  written to {where}")
    return 0


def _write(args: argparse.Namespace, key: blind.Key, wire: dict[str, Any]) -> str:
    """Record the review where the samples came from; returns where."""
    from kubetune.cli.main import UserError

    source = key.source
    if "runDir" in source:
        return _write_run(Path(source["runDir"]), wire)
    if "adapter" in source:
        return _write_adapter(args, source["adapter"], str(source.get("ref") or ""), wire)
    raise UserError(f"the key of export {key.export_id} names no run directory or Adapter to write to")


def _write_run(run_dir: Path, wire: dict[str, Any]) -> str:
    """``human-review.json`` and the run's model card (JSON and Markdown). The artifact
    directories' copies of the card are left as they were pushed."""
    from kubetune.cli.main import UserError
    from kubetune.trainer import card

    if not run_dir.is_dir():
        raise UserError(f"the run directory {run_dir} of this export is gone; use --no-write to just count")
    (run_dir / REVIEW_FILE).write_text(json.dumps(wire, indent=2) + "\n", encoding="utf-8")
    card_path = run_dir / "model-card.json"
    if card_path.is_file():
        data = json.loads(card_path.read_text(encoding="utf-8"))
        data["humanReview"] = wire
        card_path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        (run_dir / "MODEL_CARD.md").write_text(card.markdown(data), encoding="utf-8")
        return f"{run_dir / REVIEW_FILE} and the model card {card_path}"
    return str(run_dir / REVIEW_FILE)


def _write_adapter(args: argparse.Namespace, who: dict[str, str], ref: str, wire: dict[str, Any]) -> str:
    """``status.humanReview`` of the Adapter (its spec is immutable); refuses an Adapter of the
    same name that now points at another artifact."""
    from kubetune.cli.main import UserError
    from kubetune.clients import kube as kubeclient

    namespace, name = who["namespace"], who["name"]
    kube = kubeclient.Kube.from_environment(args.kubeconfig)
    url = kubeclient.path("kubetune.io/v1alpha1", "Adapter", namespace, name)
    try:
        obj = kube.get(url)
        if obj is None:
            raise UserError(f"Adapter {namespace}/{name} of this export no longer exists")
        now = str((obj.get("spec") or {}).get("ref") or "")
        if ref and now != ref:
            raise UserError(
                f"Adapter {namespace}/{name} now points at {now}, not the reviewed {ref}; not written"
            )
        kube.patch(url + "/status", {"status": {"humanReview": wire}})
    except kubeclient.ApiError as exc:
        raise UserError(f"cannot write Adapter {namespace}/{name}'s status.humanReview: {exc}") from None
    finally:
        kube.close()
    return f"Adapter {namespace}/{name} status.humanReview"
