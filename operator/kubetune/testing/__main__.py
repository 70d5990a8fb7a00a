"""``python -m kubetune.testing up|down|status|run``: the test cluster from a shell.

``up`` starts a detached supervisor (``run``) that owns the cluster, waits until it is ready
and prints the kubeconfig path; ``down`` stops it and then makes sure no process, network
namespace or address of that cluster is left; ``status`` prints the state file. State lives in
``--state-dir`` (default ``<repo>/.kubetune/cluster``, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from kubetune import logs
from kubetune.testing import crds, procs
from kubetune.testing.cluster import Cluster, repo_root
from kubetune.testing.nodeagent import network


def _state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _supervisor_alive(state: dict[str, Any] | None) -> bool:
    if not state or state.get("stopped"):
        return False
    return procs.alive(int(state.get("owner_pid", 0)))


def cmd_run(args: argparse.Namespace) -> int:
    """Foreground: start the cluster, keep it until SIGTERM/SIGINT, then stop it."""
    logs.setup(args.log_level)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    cluster = Cluster(args.state_dir, agent=not args.no_agent)
    try:
        cluster.start()
        # File by file, so one CRD the API server refuses does not take the cluster down.
        report = crds.install_each(cluster.kube, [Path(p) for p in args.crds or []])
        cluster.crds = report.installed
        for message in report.rejected.values():
            logging.getLogger("kubetune.testing").error("%s", message)
        cluster.mark_ready(supervisor_ready=True, crds_rejected=report.rejected)
        print(cluster.kubeconfig, flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    state = _state(state_dir)
    if _supervisor_alive(state) and state and state.get("supervisor_ready"):
        print(state["kubeconfig"])
        return 0
    if _supervisor_alive(state):
        print(f"a cluster is starting or stuck in {state_dir}; run `down` first", file=sys.stderr)
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "state.json").unlink(missing_ok=True)
    argv = [sys.executable, "-m", "kubetune.testing", "run", "--state-dir", str(state_dir)]
    for crd in args.crds or []:
        argv += ["--crds", str(crd)]
    if args.no_agent:
        argv.append("--no-agent")
    log_path = state_dir / "supervisor.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        state = _state(state_dir)
        if state and state.get("supervisor_ready") and state.get("owner_pid") == proc.pid:
            print(state["kubeconfig"])
            for message in state.get("crds_rejected", {}).values():
                print(f"WARNING: {message}", file=sys.stderr)
            print(
                f"cluster ready in {state['timings'].get('total', 0):.1f}s with CRDs {state['crds']}; "
                f"export KUBECONFIG={state['kubeconfig']}; stop with `python -m kubetune.testing down`",
                file=sys.stderr,
            )
            return 0
        if proc.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            print(f"cluster failed to start (exit {proc.returncode}); {log_path}:\n{tail}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"cluster not ready after {args.timeout}s; see {log_path}", file=sys.stderr)
    return 1


def cmd_down(args: argparse.Namespace) -> int:
    state = _state(args.state_dir)
    if state is None:
        print(f"no cluster state in {args.state_dir}", file=sys.stderr)
        return 0
    owner = int(state.get("owner_pid", 0))
    if procs.alive(owner):
        os.kill(owner, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while procs.alive(owner) and time.monotonic() < deadline:
            time.sleep(0.1)
        if procs.alive(owner):
            os.kill(owner, signal.SIGKILL)
    # Whatever the supervisor did or did not manage to stop: nothing of this cluster survives.
    left = procs.marked(str(state.get("cluster_id")))
    if left:
        procs.kill_pids((p.pid for p in left), grace=2.0)
    if state.get("network_octet") is not None and network.available() is None:
        network.release(network.PodNetwork(int(state["network_octet"])))
    remaining = procs.marked(str(state.get("cluster_id")))
    (args.state_dir / "state.json").unlink(missing_ok=True)
    if remaining:
        print(f"processes still alive: {remaining}", file=sys.stderr)
        return 1
    print(f"cluster {state.get('cluster_id')} stopped; no processes left", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = _state(args.state_dir)
    if state is None:
        print(f"no cluster in {args.state_dir}")
        return 1
    state["supervisor_alive"] = _supervisor_alive(state)
    state["processes_alive"] = [p.name for p in procs.marked(str(state.get("cluster_id")))]
    print(json.dumps(state, indent=2))
    return 0 if state["supervisor_alive"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubetune.testing", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=repo_root() / ".kubetune" / "cluster",
        help="cluster state directory (default: <repo>/.kubetune/cluster)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("up", "start in the background"), ("run", "start in the foreground")):
        p = sub.add_parser(name, help=helptext, parents=[common])
        p.add_argument(
            "--crds", action="append", help="CRD file or directory to install (default: <repo>/crds)"
        )
        p.add_argument("--no-agent", action="store_true", help="control plane only, no nodes")
        p.add_argument("--log-level", default="INFO")
        p.add_argument("--timeout", type=float, default=120, help="seconds `up` waits for readiness")
    sub.add_parser("down", help="stop the cluster and everything it started", parents=[common])
    sub.add_parser("status", help="print the cluster's state", parents=[common])
    args = parser.parse_args(argv)
    args.state_dir = args.state_dir.resolve()
    if args.command in ("up", "run") and args.crds is None:
        default_crds = repo_root() / "crds"
        args.crds = [str(default_crds)] if any(default_crds.glob("*.yaml")) else []
    commands = {"up": cmd_up, "run": cmd_run, "down": cmd_down, "status": cmd_status}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
