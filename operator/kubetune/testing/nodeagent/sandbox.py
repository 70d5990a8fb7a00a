"""Container shim: enter the pod's namespaces, bind-mount volumes, then exec the command.

Run by the agent as ``python -I -S sandbox.py SPEC.json`` (standard library only, no kubetune
imports: it must start fast and must not see the pod's PYTHON* variables). It joins the pod's
network namespace, unshares a private mount (and UTS) namespace, bind-mounts each volume at
its ``mountPath`` (creating missing mount points on the host and logging them so the agent can
remove them later), sets the hostname, changes directory and ``execve``s the command with the
environment it was given, so the container keeps the shim's pid and process group.

Exec failures are written to ``error_fd`` (close-on-exec, like subprocess does): an empty read
on the agent's side means the command is running. ``join_pid`` instead enters the namespaces of
a running container (exec probes).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, nstype), f"setns {path}")
    finally:
        os.close(fd)


def _mount(source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source is not None else None
    _check(_libc.mount(src, target.encode(), None, ctypes.c_ulong(flags), None), f"mount {source} {target}")


def _make_mountpoint(target: str, is_file: bool, log_fd: int) -> None:
    """Create ``target`` (and missing parents) and log each path this created."""
    created: list[str] = []
    parent = os.path.dirname(target)
    missing: list[str] = []
    while parent and not os.path.exists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    # Pods start concurrently and share the host's directories: another sandbox may create the
    # same path between the check and the mkdir, which is fine (and not ours to log).
    for path in reversed(missing):
        try:
            os.mkdir(path)
            created.append(path)
        except FileExistsError:
            pass
    if not os.path.exists(target):
        try:
            if is_file:
                with open(target, "x"):
                    pass
            else:
                os.mkdir(target)
            created.append(target)
        except FileExistsError:
            pass
    if created and log_fd >= 0:
        os.write(log_fd, "".join(p + "\n" for p in created).encode())


def _enter(spec: dict[str, object]) -> None:
    join_pid = spec.get("join_pid")
    if isinstance(join_pid, int):
        for ns, flag in (("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS), ("mnt", CLONE_NEWNS)):
            _setns(f"/proc/{join_pid}/ns/{ns}", flag)
        return
    netns = spec.get("netns")
    if isinstance(netns, str):
        _setns(netns, CLONE_NEWNET)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    _mount(None, "/", MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the host
    hostname = spec.get("hostname")
    if isinstance(hostname, str) and hostname:
        name = hostname[:64].encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")
    created_log = str(spec.get("created_log") or "")
    log_fd = (
        os.open(created_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if created_log
        else -1
    )
    mounts = spec.get("mounts")
    # Every source is opened before anything is mounted: a volume mounted over a host directory
    # (an emptyDir at /tmp) would otherwise hide the sources of later mounts below it. The bind
    # then goes through /proc/self/fd, which names the opened directory, shadowed or not.
    # Parents are mounted before the mounts nested in them.
    prepared = []
    for mount in mounts if isinstance(mounts, list) else []:
        source, target = str(mount["source"]), str(mount["target"])
        fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
        prepared.append((fd, target, os.path.isfile(source), bool(mount.get("readOnly"))))
    prepared.sort(key=lambda m: len(os.path.normpath(m[1]).split("/")))
    for fd, target, is_file, read_only in prepared:
        _make_mountpoint(target, is_file, log_fd)
        _mount(f"/proc/self/fd/{fd}", target, MS_BIND | MS_REC)
        if read_only:
            _mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY)
        os.close(fd)
    if log_fd >= 0:
        os.close(log_fd)


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    error_fd = int(spec["error_fd"])
    os.set_inheritable(error_fd, False)  # closes on a successful exec
    try:
        _enter(spec)
        workdir = str(spec.get("workdir") or "/")
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
        argv = [str(a) for a in spec["argv"]]
        os.execve(argv[0], argv, dict(os.environ))
    except BaseException as exc:  # report anything, then die like a failed exec
        os.write(error_fd, f"{type(exc).__name__}: {exc}".encode())
        os._exit(128)


if __name__ == "__main__":
    main()
