"""Push and pull a large artifact against a local CNCF distribution registry, next to a raw
single-blob upload and download of the same bytes, and report throughput and the ratio.

    .venv/bin/python benchmarks/registry/bench.py --size-mb 200 --repeat 3

"raw upload" is what any client must do at least: POST an upload session, then one PUT of the
whole file (``requests`` streaming it in the same 1 MiB reads the kubetune client uses), with the
digest computed beforehand and not timed. "raw download" is one streamed GET of the blob written
to a file, not hashed, read with the same call and block size as the kubetune client
(``iter_content(1 MiB)``); "raw dl+sha256" is the same with the SHA-256 check any verifying
client needs, inline. "kubetune push" is :func:`kubetune.registry.push_directory`
on a directory holding the file plus a small adapter config: small files are hashed first (and
skipped when present), the large file is hashed while it uploads in 64 MiB PATCH chunks, then the
config, the manifest by digest and the tag go up. "kubetune pull" is :func:`kubetune.registry.pull`
into a new directory: every layer hashed (on a helper thread) while written, then moved into
place. Every measurement gets a fresh registry with empty storage, so nothing is deduplicated;
runs alternate raw/kubetune and the median is reported, with the CPU seconds this process and the
registry process spent (so a run slowed by other load on the machine can be told apart).

Baselines: the pull target is judged against "raw dl+sha256", the least a client that verifies
the digest (as the issue requires) does; the ratio against the unverified download is printed too.
The exit status is 0 when push >= 80% of raw upload and pull >= 80% of raw dl+sha256.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import requests

from kubetune import registry
from kubetune.registry import devserver, oci, progress

LINEAGE = {"baseModel": {"uri": "hf://bench/base"}, "method": "lora"}
PLAIN = registry.Options(insecure=True)


class Blocks:
    """A file body for ``requests`` handed out in 1 MiB reads, like the kubetune client's."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.left = handle, size

    def __len__(self) -> int:
        return self.left

    def read(self, _size: int = -1) -> bytes:
        data = self.handle.read(min(self.left, oci.READ_BLOCK)) if self.left > 0 else b""
        self.left -= len(data)
        return data


def raw_upload(host: str, path: Path, digest: str) -> float:
    started = time.perf_counter()
    start = requests.post(f"http://{host}/v2/bench/raw/blobs/uploads/", timeout=60)
    start.raise_for_status()
    location = requests.compat.urljoin(f"http://{host}", start.headers["Location"])
    sep = "&" if "?" in location else "?"
    with path.open("rb") as handle:
        done = requests.put(
            f"{location}{sep}digest={digest}",
            data=Blocks(handle, path.stat().st_size),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
            timeout=600,
        )
    done.raise_for_status()
    return time.perf_counter() - started


def _blocks(host: str, digest: str) -> Iterator[bytes]:
    """The blob's bytes, fetched the way the kubetune client fetches them."""
    with requests.get(f"http://{host}/v2/bench/raw/blobs/{digest}", stream=True, timeout=600) as resp:
        resp.raise_for_status()
        yield from resp.iter_content(oci.READ_BLOCK)


def raw_download(host: str, digest: str, out: Path) -> float:
    started = time.perf_counter()
    with out.open("wb") as handle:
        for chunk in _blocks(host, digest):
            handle.write(chunk)
    return time.perf_counter() - started


def raw_download_verified(host: str, digest: str, out: Path) -> float:
    """The least a verifying client does: one streamed GET, hashed inline, written to a file."""
    started = time.perf_counter()
    hasher = hashlib.sha256()
    with out.open("wb") as handle:
        for chunk in _blocks(host, digest):
            hasher.update(chunk)
            handle.write(chunk)
    if f"sha256:{hasher.hexdigest()}" != digest:
        raise RuntimeError("raw download does not match its digest")
    return time.perf_counter() - started


def kubetune_push(host: str, src: Path) -> float:
    started = time.perf_counter()
    registry.push_directory(
        src, f"oci://{host}/bench/adapter:v1", LINEAGE, options=PLAIN, reporter=progress.Silent()
    )
    return time.perf_counter() - started


def kubetune_pull(host: str, out: Path) -> float:
    started = time.perf_counter()
    registry.pull(f"oci://{host}/bench/adapter:v1", out, options=PLAIN, reporter=progress.Silent())
    return time.perf_counter() - started


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc; 0 where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(
    server: devserver.DevRegistry,
    cpu: dict[str, list[tuple[float, float]]],
    name: str,
    run: Callable[[], float],
) -> float:
    """Run one measurement and note the CPU seconds of this process and of the registry."""
    pid = server.process.pid if server.process else 0
    mine, theirs = own_cpu(), process_cpu(pid)
    seconds = run()
    cpu[name].append((own_cpu() - mine, process_cpu(pid) - theirs))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=200, help="weights file size in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each kind (median reported)")
    parser.add_argument("--workdir", type=Path, help="where registries and files go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="kubetune-bench-"))
    src = work / "adapter"
    src.mkdir(parents=True, exist_ok=True)
    weights = src / "adapter_model.safetensors"
    size = args.size_mb * 1_000_000
    with weights.open("wb") as handle:
        for _ in range(args.size_mb):
            handle.write(os.urandom(1_000_000))
    (src / "adapter_config.json").write_text('{"r": 16, "lora_alpha": 32}')
    digest = "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()

    times: dict[str, list[float]] = {
        "raw upload": [],
        "kubetune push": [],
        "raw download": [],
        "raw dl+sha256": [],
        "kubetune pull": [],
    }
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in times}
    load_before = os.getloadavg()
    for run in range(args.repeat):
        for kind in ("raw", "kubetune") if run % 2 == 0 else ("kubetune", "raw"):
            storage = work / f"registry-{run}-{kind}"
            out = work / f"out-{run}-{kind}"
            with devserver.DevRegistry(storage) as server:
                host = server.host
                steps: list[tuple[str, Callable[[], float]]]
                if kind == "raw":
                    out.mkdir()
                    steps = [
                        ("raw upload", functools.partial(raw_upload, host, weights, digest)),
                        ("raw download", functools.partial(raw_download, host, digest, out / "blob")),
                        ("raw dl+sha256", functools.partial(raw_download_verified, host, digest, out / "b2")),
                    ]
                else:
                    steps = [
                        ("kubetune push", functools.partial(kubetune_push, host, src)),
                        ("kubetune pull", functools.partial(kubetune_pull, host, out)),
                    ]
                for name, step in steps:
                    times[name].append(measured(server, cpu, name, step))
            shutil.rmtree(storage, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)

    load_after = os.getloadavg()
    median = {name: statistics.median(values) for name, values in times.items()}
    cpu_median = {
        name: (statistics.median(c for c, _ in pairs), statistics.median(r for _, r in pairs))
        for name, pairs in cpu.items()
    }
    mb_s = {name: size / 1e6 / seconds for name, seconds in median.items()}
    push_ratio = mb_s["kubetune push"] / mb_s["raw upload"]
    pull_ratio = mb_s["kubetune pull"] / mb_s["raw download"]
    verified_ratio = mb_s["kubetune pull"] / mb_s["raw dl+sha256"]
    print(f"{args.size_mb} MB weights, {args.repeat} runs each, median; CPUs: {os.cpu_count()}")
    print(f"load average at start {load_before[0]:.2f}, at end {load_after[0]:.2f}")
    print(f"{'measurement':<16} {'seconds':>8} {'MB/s':>8} {'cpu s':>6} {'reg s':>6}   runs (s)")
    for name in times:
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        mine, theirs = cpu_median[name]
        print(f"{name:<16} {median[name]:>8.2f} {mb_s[name]:>8.1f} {mine:>6.2f} {theirs:>6.2f}   {runs}")
    print("(cpu s: median CPU seconds of this process; reg s: of the registry process)")
    print(f"push / raw upload:            {push_ratio:.0%} (target >= 80%)")
    print(f"pull / raw download+sha256:   {verified_ratio:.0%} (target >= 80%: the verifying baseline)")
    print(f"pull / raw download (no hash): {pull_ratio:.0%}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "size_mb": args.size_mb,
                    "runs": times,
                    "cpu_s": cpu,
                    "median_s": median,
                    "mb_per_s": mb_s,
                    "push_ratio": push_ratio,
                    "pull_ratio": pull_ratio,
                    "pull_vs_verified_raw_ratio": verified_ratio,
                    "cpus": os.cpu_count(),
                    "load_average_start": load_before,
                    "load_average_end": load_after,
                },
                indent=2,
            )
        )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if push_ratio >= 0.8 and verified_ratio >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
