"""Push and pull a large artifact against a local CNCF distribution registry, next to a raw
single-blob upload and download of the same bytes, and report throughput and the ratio.

    .venv/bin/python benchmarks/registry/bench.py --size-mb 200 --repeat 3

"raw upload" is what any client must do at least: POST an upload session, then one PUT of the
whole file (``requests`` streaming the file object), with the digest computed beforehand and not
timed. "raw download" is one streamed GET of the blob written to a file, not hashed; "raw
dl+sha256" is the same with the SHA-256 check any verifying client needs, inline. "kubetune
push" is :func:`kubetune.registry.push_directory` on a directory holding the file plus a small
adapter config: it hashes every file, checks for existing blobs, uploads (chunked above 64 MiB),
then pushes the config, the manifest by digest and the tag. "kubetune pull" is
:func:`kubetune.registry.pull` into a new directory: every layer hashed while written, then moved
into place. Every measurement gets a fresh registry with empty storage, so nothing is
deduplicated; runs alternate raw/kubetune and the median is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import requests

from kubetune import registry
from kubetune.registry import devserver, progress

LINEAGE = {"baseModel": {"uri": "hf://bench/base"}, "method": "lora"}
PLAIN = registry.Options(insecure=True)


def raw_upload(host: str, path: Path, digest: str) -> float:
    started = time.perf_counter()
    start = requests.post(f"http://{host}/v2/bench/raw/blobs/uploads/", timeout=60)
    start.raise_for_status()
    location = requests.compat.urljoin(f"http://{host}", start.headers["Location"])
    sep = "&" if "?" in location else "?"
    with path.open("rb") as handle:
        done = requests.put(
            f"{location}{sep}digest={digest}",
            data=handle,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
            timeout=600,
        )
    done.raise_for_status()
    return time.perf_counter() - started


def raw_download(host: str, digest: str, out: Path) -> float:
    started = time.perf_counter()
    with requests.get(f"http://{host}/v2/bench/raw/blobs/{digest}", stream=True, timeout=600) as resp:
        resp.raise_for_status()
        with out.open("wb") as handle:
            for chunk in resp.iter_content(1 << 20):
                handle.write(chunk)
    return time.perf_counter() - started


def raw_download_verified(host: str, digest: str, out: Path) -> float:
    """The least a verifying client does: one streamed GET, hashed inline, written to a file."""
    started = time.perf_counter()
    hasher = hashlib.sha256()
    with requests.get(f"http://{host}/v2/bench/raw/blobs/{digest}", stream=True, timeout=600) as resp:
        resp.raise_for_status()
        with out.open("wb") as handle:
            for chunk in resp.iter_content(1 << 20):
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
    for run in range(args.repeat):
        for kind in ("raw", "kubetune") if run % 2 == 0 else ("kubetune", "raw"):
            storage = work / f"registry-{run}-{kind}"
            out = work / f"out-{run}-{kind}"
            with devserver.DevRegistry(storage) as server:
                if kind == "raw":
                    times["raw upload"].append(raw_upload(server.host, weights, digest))
                    out.mkdir()
                    times["raw download"].append(raw_download(server.host, digest, out / "blob"))
                    times["raw dl+sha256"].append(raw_download_verified(server.host, digest, out / "blob2"))
                else:
                    times["kubetune push"].append(kubetune_push(server.host, src))
                    times["kubetune pull"].append(kubetune_pull(server.host, out))
            shutil.rmtree(storage, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    mb_s = {name: size / 1e6 / seconds for name, seconds in median.items()}
    push_ratio = mb_s["kubetune push"] / mb_s["raw upload"]
    pull_ratio = mb_s["kubetune pull"] / mb_s["raw download"]
    verified_ratio = mb_s["kubetune pull"] / mb_s["raw dl+sha256"]
    print(f"{args.size_mb} MB weights, {args.repeat} runs each, median; CPUs: {os.cpu_count()}")
    print(f"{'measurement':<16} {'seconds':>8} {'MB/s':>8}   runs (s)")
    for name in times:
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"{name:<16} {median[name]:>8.2f} {mb_s[name]:>8.1f}   {runs}")
    print(f"push / raw upload:   {push_ratio:.0%} (target >= 80%)")
    print(f"pull / raw download: {pull_ratio:.0%} (target >= 80%)")
    print(f"pull / raw download+sha256: {verified_ratio:.0%}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "size_mb": args.size_mb,
                    "runs": times,
                    "median_s": median,
                    "mb_per_s": mb_s,
                    "push_ratio": push_ratio,
                    "pull_ratio": pull_ratio,
                    "pull_vs_verified_raw_ratio": verified_ratio,
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                },
                indent=2,
            )
        )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if push_ratio >= 0.8 and pull_ratio >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
