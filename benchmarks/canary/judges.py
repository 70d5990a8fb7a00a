"""Threshold judge against statistical judge, on real Prometheus data, under machine load.

    .venv/bin/python benchmarks/canary/judges.py --healthy 6 --faulty 3 --load 1

For each judge, ``--healthy`` rollouts of a canary running the same code as stable (any
rollback is a false rollback) and ``--faulty`` rollouts of each bad canary (``errors``: 10% of
requests fail; ``slow``: every request ``--slow-ms`` slower), timed from the canary's first
traffic to the rollback, in seconds and analysis intervals. Steps as the promotion flow test:
setWeight 20 -> analysis x2 -> setWeight 60 -> analysis -> setWeight 100; interval 2s, window
10s, minSamples 10, failureLimit 2, the default limits; 20 requests/s.

Real parts: the tiny model behind ``kubetune serve`` processes on 127.0.0.1, Prometheus
scraping them every second, the controller's loop without Kubernetes (the canary level's
harness). The stable server keeps its labels for the whole benchmark (a stable revision has
served for a while); every rollout gets a new canary server, as a new revision gets new pods.
``--load N`` runs N busy-looping processes for the whole benchmark: the "loaded machine".
Judges alternate run by run, so both see the same load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kubetune.api.v1alpha1.base import parse_duration
from kubetune.api.v1alpha1.modeldeployment import RolloutSpec
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.servers import Server, build_tiny_model, launch_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
from canary import harness

JUDGES = ("threshold", "statistical")
NAMESPACE, STABLE = "bench-judges", "stable"


def rollout(judge: str, interval: str, window: str) -> RolloutSpec:
    return RolloutSpec.model_validate(
        {
            "steps": [
                {"setWeight": 20},
                {"analysis": {"intervals": 2}},
                {"setWeight": 60},
                {"analysis": {}},
                {"setWeight": 100},
            ],
            "analysis": {
                "judge": judge,
                "interval": interval,
                "window": window,
                "minSamples": 10,
                "failureLimit": 2,
            },
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", type=int, default=6, help="healthy rollouts per judge")
    parser.add_argument("--faulty", type=int, default=3, help="rollouts per judge and bad canary kind")
    parser.add_argument("--load", type=int, default=1, help="busy-looping processes")
    parser.add_argument("--slow-ms", type=float, default=20.0)
    parser.add_argument("--interval", default="2s")
    parser.add_argument("--window", default="10s")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--deadline", type=float, default=45.0, help="seconds per rollout")
    args = parser.parse_args()
    interval_s = parse_duration(args.interval)
    kinds: dict[str, tuple[str, ...]] = {
        "healthy": (),
        "errors": ("--fault-error-rate", "0.1"),
        "slow": ("--fault-latency-ms", str(args.slow_ms)),
    }
    plan = [("healthy", j) for _ in range(args.healthy) for j in JUDGES]
    plan += [(k, j) for _ in range(args.faulty) for k in ("errors", "slow") for j in JUDGES]
    results: dict[tuple[str, str], list[tuple[str, float, int]]] = {}
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, args.load))]
    try:
        with tempfile.TemporaryDirectory(prefix="kubetune-judges-bench-") as tmp:
            root = Path(tmp)
            model = build_tiny_model(root / "model")
            stable = launch_model("stable", model, root)
            prom = Prometheus(root / "prometheus")
            try:
                prom.start()
                stable.wait_ready()
                for i, (kind, judge) in enumerate(plan):
                    outcome = one_rollout(root, model, prom, stable, kind, kinds[kind], judge, args)
                    results.setdefault((kind, judge), []).append(outcome)
                    what, seconds, analyses = outcome
                    print(
                        f"{i + 1}/{len(plan)} {kind:<8} {judge:<11} {what:<11} {seconds:6.2f}s "
                        f"{seconds / interval_s:5.2f} intervals, {analyses} analyses",
                        flush=True,
                    )
            finally:
                prom.stop()
                stable.stop()
    finally:
        for b in burners:
            b.kill()
            b.wait()
    print(
        "\n| canary | judge | runs | promoted | rolled back | rollback seconds (median, max) | intervals (median, max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for (kind, judge), rows in sorted(results.items()):
        back = [s for what, s, _ in rows if what == "RolledBack"]
        promoted = sum(what == "Promoted" for what, _, _ in rows)
        timing = (
            f"{statistics.median(back):.2f}, {max(back):.2f} | "
            f"{statistics.median(back) / interval_s:.2f}, {max(back) / interval_s:.2f}"
            if back
            else "- | -"
        )
        print(f"| {kind} | {judge} | {len(rows)} | {promoted} | {len(back)} | {timing} |")
    return 0


def one_rollout(
    root: Path,
    model: Path,
    prom: Prometheus,
    stable: Server,
    kind: str,
    flags: tuple[str, ...],
    judge: str,
    args: argparse.Namespace,
) -> tuple[str, float, int]:
    """(Promoted | RolledBack | Unfinished, seconds from the first canary traffic, analyses)."""
    canary_server = launch_model(f"canary-{kind}", model, root, *flags)
    try:
        canary_server.wait_ready()
        canary = f"{kind}-{uuid.uuid4().hex[:6]}"
        prom.set_targets(
            harness.label(stable, NAMESPACE, STABLE) | harness.label(canary_server, NAMESPACE, canary)
        )
        client = prom.client()
        up = f'count(up{{namespace="{NAMESPACE}",kubetune_io_revision=~"{STABLE}|{canary}"}} == 1)'
        deadline = time.monotonic() + 30
        while client.query(up) != 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"canary {canary} never scraped")
            time.sleep(0.5)
        with harness.Traffic(stable, canary_server, rate=args.rate) as traffic:
            run = harness.run_rollout(
                rollout(judge, args.interval, args.window),
                prom=prom,
                traffic=traffic,
                namespace=NAMESPACE,
                stable=STABLE,
                canary_rev=canary,
                deadline_s=args.deadline,
            )
        if (kind == "healthy") != run.promoted:  # a false rollback, a missed regression, unfinished
            print(run.describe(), flush=True)
        what = "RolledBack" if run.rolled_back else "Promoted" if run.promoted else "Unfinished"
        assert run.ended is not None
        return what, run.ended - run.started, len(run.analyses)
    finally:
        canary_server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
