"""Time from a bad canary's first failed request to its rollback, on real Prometheus data.

    .venv/bin/python benchmarks/canary/bench.py --runs 5 --error-rate 0.5 --interval 2s --window 10s

Starts the tiny model (``kubetune.trainer.tiny``) behind two ``kubetune serve`` processes on
127.0.0.1 (stable, and a canary with ``--fault-error-rate``), and Prometheus scraping them every
second. Each run labels the pair with a fresh namespace and revisions (so runs never share
series), sends ``--rate`` requests/s split by the canary weight and loops like the controller
(``analysis_due`` -> ``observe.analysis_outcome`` -> ``advance``, every 0.25 s, real clock) with
steps setWeight 50 -> analysis x3 -> setWeight 100 until rollback. Reported per run: seconds
from the first failed canary request (seen by the client) to the rollback decision, that time in
analysis intervals, and the analyses that ran. Loopback only; traffic is bounded by --rate and
the rollout deadline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kubetune.api.v1alpha1.base import parse_duration
from kubetune.api.v1alpha1.modeldeployment import RolloutSpec
from kubetune.testing.prometheus import Prometheus
from kubetune.testing.servers import build_tiny_model, launch_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
from canary import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--error-rate", type=float, default=0.5)
    parser.add_argument("--interval", default="2s")
    parser.add_argument("--window", default="10s")
    parser.add_argument("--min-samples", type=int, default=10)
    parser.add_argument("--failure-limit", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s, stable + canary")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds per run")
    args = parser.parse_args()
    interval_s = parse_duration(args.interval)
    spec = RolloutSpec.model_validate(
        {
            "steps": [{"setWeight": 50}, {"analysis": {"intervals": 3}}, {"setWeight": 100}],
            "analysis": {
                "interval": args.interval,
                "window": args.window,
                "minSamples": args.min_samples,
                "failureLimit": args.failure_limit,
            },
        }
    )
    with tempfile.TemporaryDirectory(prefix="kubetune-canary-bench-") as tmp:
        root = Path(tmp)
        t0 = time.monotonic()
        model = build_tiny_model(root / "model")
        servers = [
            launch_model("stable", model, root),
            launch_model(
                "canary", model, root, "--fault-error-rate", str(args.error_rate), "--fault-seed", "7"
            ),
        ]
        prom = Prometheus(root / "prometheus")
        try:
            prom.start()
            for s in servers:
                s.wait_ready()
            print(f"setup {time.monotonic() - t0:.1f}s; prometheus {prom.url}", flush=True)
            rows = []
            for i in range(args.runs):
                suffix = uuid.uuid4().hex[:6]
                ns, stable, canary = f"bench-{suffix}", f"stable-{suffix}", f"canary-{suffix}"
                prom.set_targets(
                    harness.label(servers[0], ns, stable) | harness.label(servers[1], ns, canary)
                )
                prom.wait_scraped(ns, 2)
                with harness.Traffic(servers[0], servers[1], rate=args.rate) as traffic:
                    run = harness.run_rollout(
                        spec,
                        prom=prom,
                        traffic=traffic,
                        namespace=ns,
                        stable=stable,
                        canary_rev=canary,
                        deadline_s=args.deadline,
                    )
                    first = traffic.first_canary_failure
                if not run.rolled_back or first is None or run.ended is None:
                    print(f"run {i + 1}: no rollback within {args.deadline}s\n{run.describe()}", flush=True)
                    continue
                seconds = run.ended - first
                verdicts = "/".join(a.outcome.verdict[0] for a in run.analyses)
                rows.append((seconds, seconds / interval_s, len(run.analyses)))
                print(
                    f"run {i + 1}: first canary error -> rollback {seconds:.2f}s = "
                    f"{seconds / interval_s:.2f} intervals; analyses {verdicts} ({len(run.analyses)}); "
                    f"stable failures {run.end_counts['stable'].failed}",
                    flush=True,
                )
        finally:
            prom.stop()
            for s in servers:
                s.stop()
    if rows:
        secs = [r[0] for r in rows]
        print(
            f"\n{len(rows)}/{args.runs} rolled back; seconds median {statistics.median(secs):.2f} "
            f"min {min(secs):.2f} max {max(secs):.2f}; intervals median "
            f"{statistics.median(r[1] for r in rows):.2f} max {max(r[1] for r in rows):.2f}; "
            f"analyses median {statistics.median(r[2] for r in rows):.0f}"
        )
    return 0 if len(rows) == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
