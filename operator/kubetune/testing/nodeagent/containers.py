"""One container of a pod: its process, its Kubernetes state, its probes.

:class:`ContainerRun` starts the command through the sandbox shim, notices its exit, reads the
termination message, runs startup/readiness/liveness probes (httpGet, tcpSocket, exec) and
renders ``containerStatuses`` entries. Restart decisions and pod phase live in pods.py; this
module never talks to the API server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetune.testing.nodeagent import sandbox
from kubetune.testing.nodeagent.images import normalize
from kubetune.testing.nodeagent.volumes import Mount

Obj = dict[str, Any]
SHIM = Path(sandbox.__file__)
MAX_MESSAGE = 4096


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Launch:
    """Everything needed to start the process, resolved by the pod worker."""

    argv: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    workdir: str
    netns: str | None
    hostname: str
    created_log: Path


@dataclasses.dataclass
class ProbeState:
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0
    passed: bool = False


class ContainerRun:
    """The agent's record of one (init or regular) container of a pod."""

    def __init__(self, spec: Obj, *, init: bool, log_path: Path, work_dir: Path, pod_ip: str) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.log_path = log_path
        self.work_dir = work_dir
        self.pod_ip = pod_ip
        self.term_file = work_dir / "termination-log"
        self.restart_count = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: Obj = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: Obj = {}
        self.ready = False
        self.started = False
        self.done = False  # terminated and will not run again
        self.exit_code: int | None = None
        self.exit_recorded = False  # the current process's exit has been turned into state
        self.next_start = 0.0
        self.backoff = 0.0
        self.started_mono = 0.0
        self.container_id = ""
        self.probes: dict[str, ProbeState] = {}
        # Turns an exec probe's command into an absolute argv (image rewrites, PATH lookup).
        self.resolve_exec: Callable[[list[str]], list[str]] = lambda argv: argv
        self.proc_env: dict[str, str] = {}
        self.probe_failures: list[
            str
        ] = []  # drained by the pod worker into Unhealthy events  # the environment of the current process (exec probes)

    # ---- lifecycle -------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def set_waiting(self, reason: str, message: str = "") -> None:
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}

    def start(self, launch: Launch) -> str | None:
        """Start the process; returns None on success or the exec error message."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.term_file.write_bytes(b"")
        term_path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        mounts = [*launch.mounts, Mount(str(self.term_file), term_path, False)]
        read_fd, write_fd = os.pipe()
        spec_file = self.work_dir / "launch.json"
        spec_file.write_text(
            json.dumps(
                {
                    "netns": launch.netns,
                    "hostname": launch.hostname,
                    "mounts": [m.as_json() for m in mounts],
                    "created_log": str(launch.created_log),
                    "workdir": launch.workdir,
                    "argv": launch.argv,
                    "error_fd": write_fd,
                }
            )
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("ab") as out:
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(SHIM), str(spec_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=launch.env,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            error = pipe.read().decode(errors="replace")
        self.container_id = f"kubetune://{self.proc.pid}"
        if error:
            self.proc.wait()
            return error
        self.started_mono = time.monotonic()
        self.exit_recorded = False
        self.state = {"running": {"startedAt": now_iso()}}
        self.exit_code = None
        self.probes = {}
        has_startup = "startupProbe" in self.spec
        self.started = not has_startup
        self.ready = self.started and "readinessProbe" not in self.spec
        return None

    def poll_exit(self) -> int | None:
        """The exit code if the process ended since the last call, else None."""
        if self.proc is None or self.exit_recorded:
            return None
        code = self.proc.poll()
        if code is None:
            return None
        code = 128 - code if code < 0 else code  # killed by signal N -> 128+N
        self.record_exit(code)
        return code

    def record_exit(self, code: int, reason: str | None = None, message: str = "") -> None:
        started = (self.state.get("running") or {}).get("startedAt") or now_iso()
        self.exit_recorded = True
        self.exit_code = code
        self.ready = False
        self.started = False
        message = message or self._termination_message(code)
        self.state = {
            "terminated": {
                "exitCode": code,
                "reason": reason or ("Completed" if code == 0 else "Error"),
                "startedAt": started,
                "finishedAt": now_iso(),
                "containerID": self.container_id,
                **({"message": message} if message else {}),
            }
        }

    def _termination_message(self, code: int) -> str:
        try:
            text = self.term_file.read_bytes()[:MAX_MESSAGE].decode(errors="replace")
        except OSError:
            text = ""
        if not text and code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            try:
                lines = self.log_path.read_bytes().decode(errors="replace").splitlines()[-80:]
            except OSError:
                lines = []
            text = "\n".join(lines)[-2048:]
        return text

    def signal(self, sig: int) -> None:
        if self.running() and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def reap(self) -> None:
        """SIGKILL whatever is left of the process group and collect the exit status."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    # ---- probes ----------------------------------------------------------------------
    def run_probes(self, launch_env: dict[str, str]) -> str | None:
        """Run due probes; returns 'startup' or 'liveness' when the container must be killed."""
        if not self.running():
            return None
        now = time.monotonic()
        kinds = ["startupProbe"] if not self.started else ["readinessProbe", "livenessProbe"]
        for kind in kinds:
            probe = self.spec.get(kind)
            if not probe:
                continue
            st = self.probes.setdefault(
                kind, ProbeState(next_at=self.started_mono + float(probe.get("initialDelaySeconds", 0)))
            )
            if now < st.next_at:
                continue
            st.next_at = now + float(probe.get("periodSeconds", 10))
            failure = self._probe_once(probe, launch_env)
            ok = failure is None
            if failure is not None:
                self.probe_failures.append(f"{kind[: -len('Probe')].capitalize()} probe failed: {failure}")
            if ok:
                st.successes, st.failures = st.successes + 1, 0
                if st.successes >= int(probe.get("successThreshold", 1)):
                    st.passed = True
            else:
                st.successes, st.failures = 0, st.failures + 1
                if st.failures >= int(probe.get("failureThreshold", 3)):
                    st.passed = False
            if kind == "startupProbe" and st.passed:
                self.started = True
                self.ready = "readinessProbe" not in self.spec
            elif kind == "readinessProbe":
                self.ready = st.passed
            if not st.passed and st.failures >= int(probe.get("failureThreshold", 3)):
                if kind == "startupProbe":
                    return "startup"
                if kind == "livenessProbe":
                    return "liveness"
        return None

    def _port(self, port: object) -> int:
        if isinstance(port, int):
            return port
        for p in self.spec.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        return int(str(port))

    def _probe_once(self, probe: Obj, env: dict[str, str]) -> str | None:
        """None when the probe passes, else why it failed."""
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                host = get.get("host") or self.pod_ip
                scheme = str(get.get("scheme", "HTTP")).lower()
                url = f"{scheme}://{host}:{self._port(get['port'])}{get.get('path', '/')}"
                req = urllib.request.Request(
                    url, headers={h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                )
                req.add_header("User-Agent", "kube-probe/1.37")
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    code = int(resp.status)
                    return None if 200 <= code < 400 else f"HTTP probe failed with statuscode: {code}"
            if "tcpSocket" in probe:
                tcp = probe["tcpSocket"]
                with socket.create_connection(
                    (tcp.get("host") or self.pod_ip, self._port(tcp["port"])), timeout
                ):
                    return None
            if "exec" in probe and self.proc is not None:
                result = self._exec_probe(list(probe["exec"]["command"]), env, timeout)
                return None if result == 0 else f"command {probe['exec']['command']}: {result}"
        except urllib.error.HTTPError as exc:
            return f"HTTP probe failed with statuscode: {exc.code}"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            return str(getattr(exc, "reason", exc))
        return None  # grpc and unknown probe kinds are not checked

    def _exec_probe(self, argv: list[str], env: dict[str, str], timeout: float) -> int | str:
        """The command's exit code, or why it could not run (timeouts included)."""
        assert self.proc is not None
        try:
            argv = self.resolve_exec(argv)
        except Exception as exc:
            return str(exc)
        read_fd, write_fd = os.pipe()
        spec_file = self.work_dir / "exec.json"
        spec_file.write_text(
            json.dumps({"join_pid": self.proc.pid, "workdir": "/", "argv": argv, "error_fd": write_fd})
        )
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SHIM), str(spec_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        os.close(read_fd)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"timed out after {timeout:g}s"

    # ---- status ----------------------------------------------------------------------
    def status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": f"{normalize(self.spec.get('image', ''))}@kubetune-local",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out
