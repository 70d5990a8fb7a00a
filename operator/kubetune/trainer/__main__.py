"""``python -m kubetune.trainer``: the trainer image's entry point.

Subcommands: ``preflight`` (the CPU-only pod that runs first; stops after the report) and
``train`` (preflight again, then train, evaluate, export). Exit codes: 0 done, 1 a user or data
problem (one line on stderr and in ``--termination-log``), 2 the evaluation gate was not met
(artifacts kept, not to be registered), 3 an internal error (a bug: traceback in the logs),
143 stopped by SIGTERM after writing a checkpoint (run again to resume). ``result.json`` in the
output directory describes every outcome. Under torchrun, ranks other than 0 stay quiet
(no progress, no status updates) and write their result.json to ``OUTPUT/.rank-N``; their
exit codes are the same. Parses arguments only; the work is in :mod:`kubetune.trainer.pipeline`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from kubetune import logs
from kubetune.api.contract import exits, pod
from kubetune.api.contract.result import RunResult
from kubetune.trainer import distributed, errors, loop, pipeline, progress, report, statussink
from kubetune.trainer import spec as job_spec

log = logging.getLogger("kubetune.trainer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kubetune.trainer",
        description="Run a FineTuneJob's preflight or training (inside the trainer image or locally).",
        epilog=f"exit codes: {exits.summary()}",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--spec", required=True, type=Path, help="FineTuneJob YAML (a whole object or just its spec)"
    )
    common.add_argument(
        "--output",
        type=Path,
        default=Path("output"),
        help="output directory (result.json, artifacts); default ./output",
    )
    common.add_argument("--name", help="job name (default: metadata.name, else the file name)")
    common.add_argument(
        "--termination-log", type=Path, help="file to receive the one-line outcome, e.g. /dev/termination-log"
    )
    common.add_argument(
        "--progress",
        choices=["auto", "json", "bar", "none"],
        default="json",
        help="progress events on stdout (default json)",
    )
    pre = commands.add_parser(
        "preflight", parents=[common], help="check data, method, hardware and budget; train nothing"
    )
    pre.add_argument(
        "--hardware",
        choices=["spec", "here"],
        default="spec",
        help="judge GPU needs by spec.resources (default: the training pod will have them) or by this machine",
    )
    train = commands.add_parser("train", parents=[common], help="preflight, train, evaluate and export")
    train.add_argument(
        "--checkpoint-dir",
        type=Path,
        help="checkpoints (resumed from when present); default OUTPUT/checkpoints",
    )
    train.add_argument(
        "--keep-checkpoints",
        type=int,
        default=pod.KEEP_CHECKPOINTS,
        help=f"complete checkpoints to keep (default {pod.KEEP_CHECKPOINTS})",
    )
    train.add_argument("--dry-run", action="store_true", help="stop after the preflight (like spec.dryRun)")
    return parser


def _print_report(found: report.Report) -> None:
    print(report.render(found), file=sys.stderr, flush=True)


def _terminate(path: Path | None, message: str) -> None:
    if path is None:
        return
    try:
        path.write_text(message[:4000] + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the termination log", extra=logs.fields(path=str(path), error=str(exc)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup()
    try:
        world = distributed.from_environment()
    except errors.UserError as exc:
        print(f"kubetune-trainer: {exc}", file=sys.stderr)
        _terminate(args.termination_log, str(exc))
        return exc.exit_code
    if not world.main:
        args.output = args.output / f".rank-{world.rank}"
        args.progress = "none"
    sink = progress.default(args.progress, sys.stdout)
    # the readable table is for terminals; pods get the same report as a JSON event
    show = _print_report if isinstance(sink, progress.BarSink) else None
    # In a cluster pod, also report progress to the FineTuneJob's status (per-job Role).
    if world.main and (live := statussink.from_environment()) is not None:
        sink = progress.MultiSink(sink, live)
    try:
        job = job_spec.load(args.spec, name=args.name)
        job_spec.check_owner(job)
        if args.command == "preflight":
            opts = pipeline.Options(
                output_dir=args.output, hardware=args.hardware, on_preflight=show, world=world
            )
            result, _ = pipeline.run_preflight(job, opts, sink)
            pipeline.finish(result, args.output, sink)
        else:
            stop = loop.StopFlag().install()
            opts = pipeline.Options(
                output_dir=args.output,
                checkpoint_dir=args.checkpoint_dir,
                dry_run=args.dry_run,
                keep_checkpoints=args.keep_checkpoints,
                stop=stop,
                on_preflight=show,
                world=world,  # read from the environment above, once
            )
            result = pipeline.run(job, opts, sink)
            stop.uninstall()
    except errors.UserError as exc:
        print(f"kubetune-trainer: {exc}", file=sys.stderr)
        _terminate(args.termination_log, str(exc))
        failed = RunResult(
            job=str(args.name or args.spec), outcome="Failed", exit_code=exc.exit_code, message=str(exc)
        )
        pipeline.finish(failed, args.output, sink)
        return exc.exit_code
    except Exception as exc:
        log.error("internal error", extra=logs.fields(error=repr(exc), traceback=traceback.format_exc()))
        message = f"internal error: {type(exc).__name__}: {exc}"
        _terminate(args.termination_log, message)
        broken = RunResult(
            job=str(args.name or args.spec),
            outcome="Failed",
            exit_code=exits.INTERNAL_ERROR,
            message=message,
        )
        pipeline.finish(broken, args.output, sink)
        return exits.INTERNAL_ERROR
    finally:
        sink.close()
    if result.exit_code != exits.OK:
        print(f"kubetune-trainer: {result.message}", file=sys.stderr)
    _terminate(args.termination_log, result.message)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
