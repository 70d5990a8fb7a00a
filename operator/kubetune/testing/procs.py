"""Child processes of the test cluster: one process group each, marked, and reapable.

Every process the harness starts (etcd, the Kubernetes components, the node agent and the
pods it runs) carries two environment variables: :data:`MARK_CLUSTER` (the cluster's id) and
:data:`MARK_OWNER` (the pid of the process that owns the cluster). That lets teardown find
stragglers by scanning ``/proc`` and lets a later run reap what a killed one left behind. This
module knows nothing about Kubernetes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

MARK_CLUSTER = "KUBETUNE_TESTING_CLUSTER"
MARK_OWNER = "KUBETUNE_TESTING_OWNER"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MarkedProcess:
    """A live process that carries the cluster marks in its environment."""

    pid: int
    cluster_id: str
    owner_pid: int
    name: str


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X", "")


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def process_name(pid: int) -> str:
    """Basename of the process's argv[0] (``comm`` is cut at 15 characters); '' when gone."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        return (
            os.path.basename(argv0.decode(errors="replace")) or Path(f"/proc/{pid}/comm").read_text().strip()
        )
    except OSError:
        return ""


def marked(cluster_id: str | None = None) -> list[MarkedProcess]:
    """Live processes marked as belonging to ``cluster_id`` (or to any cluster when None)."""
    found: list[MarkedProcess] = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        env = _environ(pid)
        cid = env.get(MARK_CLUSTER)
        if cid is None or (cluster_id is not None and cid != cluster_id) or not alive(pid):
            continue
        owner = env.get(MARK_OWNER, "0")
        found.append(MarkedProcess(pid, cid, int(owner) if owner.isdigit() else 0, process_name(pid)))
    return found


def kill_pids(pids: Iterable[int], grace: float) -> None:
    """SIGTERM each pid (and its process group if it leads one), then SIGKILL after ``grace``."""
    pids = [p for p in pids if alive(p)]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def reap_orphans() -> list[MarkedProcess]:
    """Kill marked processes whose owner died (a test run killed with SIGKILL). Returns them."""
    orphans = [p for p in marked() if p.owner_pid and not alive(p.owner_pid)]
    if orphans:
        log.warning("killing processes left by a dead test cluster: %s", [(p.pid, p.name) for p in orphans])
        kill_pids((p.pid for p in orphans), grace=2.0)
    return orphans


class Process:
    """One child in its own process group, with its output appended to a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str],
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env)
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: teardown signals the whole group
            )
        log.debug("started %s pid=%d", self.name, self.popen.pid)

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, wait up to ``grace`` s, then SIGKILL it; always reaps."""
        if self.popen is None:
            return
        pgid = self.popen.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored SIGTERM for %.0fs; killing it", self.name, grace)
        # SIGKILL the group even after the leader exited: members may linger.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.popen.wait()
