"""``kubetune run FILE``: run a FineTuneJob on this machine (local mode), same spec as the cluster.

Preflight -> train -> evaluate -> export, with progress on stderr (a bar on a terminal, JSON
lines otherwise), then a table of base-versus-tuned metrics and where the artifacts are; when
the gate passes, the adapter is pushed to ``spec.output.repository`` (default: the local OCI
layout registry ``./.kubetune/registry``) unless ``--no-push``. Re-running the same command
resumes from the last checkpoint. ``--nproc N`` trains with N data-parallel processes (one per
GPU of a workstation, or CPU processes) through the trainer's torchrun launcher, as a
multi-node job's pods do, and shows rank 0's progress. Exit codes as ``python -m
kubetune.trainer``: 0, 1 (user or data error, one line), 2 (gate not met), 130 (interrupted
after a checkpoint). This module parses arguments and prints; the work is in
:mod:`kubetune.trainer.pipeline`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubetune import logs

if TYPE_CHECKING:
    from kubetune.api.contract.result import RunResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a FineTuneJob locally: preflight, train, evaluate, export",
        description=(
            "Run a FineTuneJob on this machine: preflight (dataset, template, method, budget), "
            "training, evaluation against the base model, export, and a push of the adapter to "
            "the local registry when the gate passes. Re-run to resume from the last checkpoint."
        ),
    )
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="FineTuneJob YAML; relative paths resolve from its directory"
    )
    parser.add_argument("--dry-run", action="store_true", help="stop after the preflight report")
    parser.add_argument("--output", type=Path, help="output directory (default ./.kubetune/runs/NAME)")
    parser.add_argument("--no-push", action="store_true", help="do not push the adapter to a registry")
    parser.add_argument(
        "--fresh", action="store_true", help="discard earlier checkpoints of this output directory"
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "json", "none"],
        default="auto",
        help="progress on stderr (default: bar on a terminal)",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="data-parallel training processes on this machine (torchrun): one per GPU; default 1",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kubetune.trainer import errors, loop, pipeline, progress, report
    from kubetune.trainer import spec as job_spec

    logs.setup(level="WARNING")
    try:
        job = job_spec.load(args.file)
    except errors.UserError as exc:
        print(f"kubetune: {exc}", file=sys.stderr)
        return 1
    out: Path = (args.output or Path(".kubetune") / "runs" / job.name).resolve()
    if args.nproc < 1:
        print(f"kubetune: --nproc must be at least 1 (got {args.nproc})", file=sys.stderr)
        return 1
    if args.fresh and (out / "checkpoints").exists():
        shutil.rmtree(out / "checkpoints")
    sink = progress.default(args.progress, sys.stderr)
    stop = loop.StopFlag().install()
    try:
        if args.nproc > 1:
            result = _run_processes(args, job.name, out, sink)
        else:
            opts = pipeline.Options(
                output_dir=out,
                dry_run=args.dry_run,
                stop=stop,
                on_preflight=lambda found: print(report.render(found), flush=True),
                push_to=None,  # local mode pushes below, after the summary (unless --no-push)
            )
            result = pipeline.run(job, opts, sink)
    except errors.UserError as exc:
        print(f"kubetune: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.uninstall()
        sink.close()
    if result is None:
        return 1
    if result.outcome in ("PreflightFailed", "Failed"):
        print(f"kubetune: {result.message}", file=sys.stderr)
        return 1
    if result.outcome == "DryRunComplete":
        print(f"\ndry run: stopped after the preflight; result in {out / 'result.json'}")
        return 0
    if result.outcome == "Terminated":
        print(f"kubetune: {result.message}; run the same command again to resume", file=sys.stderr)
        return 128 + (stop.signal or signal.SIGINT)
    print()
    print(metrics_table(result))
    print()
    assert result.artifacts is not None
    for label, value in (
        ("adapter", result.artifacts.adapter),
        ("model", result.artifacts.model),
        ("merged", result.artifacts.merged),
        ("int8", result.artifacts.int8),
        ("model card", result.artifacts.model_card_markdown),
        ("result", str(out / "result.json")),
    ):
        if value:
            print(f"  {label:<11} {_short(value)}")
    gate = result.gate
    if gate is not None:
        print(f"  {'gate':<11} {'passed' if gate.passed else 'NOT MET'}: {gate.message}")
    if result.exit_code != 0:
        print(f"kubetune: {result.message}", file=sys.stderr)
        return result.exit_code
    if args.no_push:
        print(f"  {'registry':<11} not pushed (--no-push)")
        return 0
    try:
        ref = push(job, result, out)
    except Exception as exc:  # the registry's errors carry a one-line message for the user
        print(f"kubetune: trained, but the push failed: {exc}", file=sys.stderr)
        return 1
    print(f"  {'registry':<11} {_short(ref)}")
    return 0


def _run_processes(args: argparse.Namespace, name: str, out: Path, sink: Any) -> RunResult | None:
    """Train through the torchrun launcher with ``args.nproc`` processes; rank 0's result (None,
    after saying why, when there is none). Rank 0's JSON progress is shown through ``sink``; a
    Ctrl-C reaches the processes too (same process group) and they checkpoint first."""
    from kubetune.api.contract import events, pod, result

    cmd = [
        sys.executable,
        "-m",
        "kubetune.trainer.distributed",
        "--standalone",
        f"--nproc-per-node={args.nproc}",
        "-m",
        "kubetune.trainer",
        "train",
        "--spec",
        str(args.file.resolve()),
        "--name",
        name,
        "--output",
        str(out),
        *(["--dry-run"] if args.dry_run else []),
    ]
    env = {**os.environ, pod.REGISTRY: ""}  # this command pushes, after the summary
    (out / result.FILENAME).unlink(missing_ok=True)  # never report an earlier run's result
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = events.parse(line)
            if event is not None:
                sink.emit(event)
    try:
        return result.read(out)
    except (OSError, ValueError):
        print(f"kubetune: the training processes exited {proc.returncode} without a result", file=sys.stderr)
        return None


def _short(path: str) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def metrics_table(result: Any) -> str:
    """Base vs tuned, one metric per line."""
    rows = [("metric", "base", "tuned", "improvement")]
    for m in result.metrics:
        rows.append(
            (
                m.name,
                "-" if m.base is None else f"{m.base:.4f}",
                f"{m.tuned:.4f}",
                "-" if m.delta is None else f"{m.delta:+.4f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  "
        + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def push(job: Any, result: Any, out: Path) -> str:
    """Push the run's adapter (or whole model) with its lineage; returns the digest-pinned ref.

    ``spec.output.repository``, else the local layout registry; see :mod:`kubetune.trainer.publish`.
    """
    from kubetune.trainer import publish

    return publish.push(job, result, job.spec.output.repository).ref
