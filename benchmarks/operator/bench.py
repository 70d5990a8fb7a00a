"""Operator benchmark: 200 FineTuneJobs on the local control plane; create-to-Job latency, RSS.

Starts a test cluster (``kubetune.testing.Cluster``), installs the CRDs, runs the operator in a
subprocess (``kubetune.controllers.operator.run``, one namespace), creates N suspended
FineTuneJobs back to back and watches batch Jobs: the latency of a job is the time from its
create call returning to the benchmark seeing its preflight Job. The trainer image is
deliberately unmapped on the test node agent, so the 200 preflight pods wait on ErrImagePull
instead of running 200 trainers on a laptop: the operator's work is what is measured. Peak RSS
is the operator process's VmHWM. The API server's own request counters
(``apiserver_request_total``, every client together: operator, controllers, node agent, this
benchmark's polling) are read before the first create and after the run, and their difference
is reported by verb and resource, so the calls a change saves are counted, not guessed from
latencies on a shared machine. Usage:

    .venv/bin/python benchmarks/operator/bench.py [--jobs 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kubetune.testing import Cluster, crds
from kubetune.testing.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.1
OPERATOR = """
import sys
from kubetune.controllers import operator, settings
# a registry prefix is required (a job without one ends NoRegistry before its preflight); nothing
# is pushed, since the trainer image is unmapped and no pod runs
sys.exit(operator.run(settings.Settings(trainer_image="bench.invalid/kubetune/trainer-unmapped:0",
                                        default_registry="oci://registry.bench.invalid/adapters"),
                      namespaces=[sys.argv[1]], metrics_address=("127.0.0.1", 0)))
"""


def job_body(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": f"bench-{i:04d}"},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "dataset": {"uri": "pvc://data/train.jsonl"},
            "suspend": True,
        },
    }


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


_REQUEST_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def api_requests(kube: Any) -> Counter[str]:
    """The API server's request counters (``apiserver_request_total``), as "VERB resource[/sub]"."""
    method, url, headers, data, post = kube.api.param_serialize(
        method="GET",
        resource_path="/metrics",
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    text = kube.api.call_api(method, url, headers, data, post, _request_timeout=30).read().decode()
    out: Counter[str] = Counter()
    for line in text.splitlines():
        match = _REQUEST_LINE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        resource = labels.get("resource", "") + (
            f"/{labels['subresource']}" if labels.get("subresource") else ""
        )
        out[f"{labels.get('verb', '?')} {resource}"] += int(float(match["value"]))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubetune-bench-operator-") as tmp, Cluster(Path(tmp)) as cluster:
        kube = cluster.kube
        report = crds.install_each(kube, [REPO / "crds"])
        assert "finetunejobs.kubetune.io" in report.installed, report
        ns = cluster.create_namespace("bench")
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        log_path = Path(tmp) / "operator.log"  # never a pipe nobody reads: it would block the operator
        op_log = log_path.open("wb")
        op = subprocess.Popen([sys.executable, "-c", OPERATOR, ns], env=env, stdout=op_log, stderr=op_log)
        seen: dict[str, float] = {}
        created: dict[str, float] = {}
        stop = threading.Event()

        def watch_jobs() -> None:
            # Polling (every POLL_SECONDS) rather than a watch: simple, and its resolution is
            # reported with the results.
            while not stop.is_set():
                for obj in kube.list(f"/apis/batch/v1/namespaces/{ns}/jobs"):
                    owner = (obj.get("metadata") or {}).get("labels", {}).get("kubetune.io/finetunejob")
                    if owner and owner not in seen:
                        seen[owner] = time.monotonic()
                stop.wait(POLL_SECONDS)

        watcher = threading.Thread(target=watch_jobs, daemon=True)
        watcher.start()
        time.sleep(3)  # operator start-up and first listing
        baseline = rss_kib(op.pid, "VmRSS")
        requests_before = api_requests(kube)
        t0 = time.monotonic()
        for i in range(args.jobs):
            body = job_body(i)
            kube.create(f"/apis/kubetune.io/v1alpha1/namespaces/{ns}/finetunejobs", body)
            created[body["metadata"]["name"]] = time.monotonic()
        create_s = time.monotonic() - t0
        try:
            wait_for(lambda: len(seen) >= args.jobs, 240, f"{args.jobs} preflight Jobs", interval=0.2)
        except AssertionError:
            tail = log_path.read_text(errors="replace")[-3000:]
            print(f"only {len(seen)} Jobs seen; operator alive: {op.poll() is None}\n{tail}", file=sys.stderr)
            raise
        all_s = max(seen.values()) - t0
        time.sleep(5)  # let the status writes and resyncs settle before reading the peak
        peak = rss_kib(op.pid, "VmHWM")
        stop.set()
        watcher.join()
        requests = api_requests(kube) - requests_before
        op.terminate()
        try:
            op.wait(20)
        except subprocess.TimeoutExpired:
            op.kill()
        latencies = [seen[n] - created[n] for n in created]
        result = {
            "jobs": args.jobs,
            "create_calls_seconds": round(create_s, 2),
            "all_jobs_seen_seconds": round(all_s, 2),
            "create_to_job_p50_seconds": round(statistics.median(latencies), 3),
            "create_to_job_p95_seconds": round(percentile(latencies, 0.95), 3),
            "create_to_job_max_seconds": round(max(latencies), 3),
            "operator_rss_baseline_mib": round(baseline / 1024, 1),
            "operator_peak_rss_mib": round(peak / 1024, 1),
            "poll_resolution_seconds": POLL_SECONDS,
            "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
            # Every client's calls (operator, controllers, node agent, this benchmark's polling)
            # from the first create to 5 s after the last Job was seen.
            "api_requests_total": sum(requests.values()),
            "api_requests": dict(sorted(requests.items(), key=lambda kv: -kv[1])),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
