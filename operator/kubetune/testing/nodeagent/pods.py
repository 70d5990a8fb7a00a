"""The life of one pod on the test node: sandbox, volumes, init containers, containers, deletion.

A :class:`PodWorker` thread does for one pod what the kubelet's pod worker does: create the
network sandbox, write volumes, run init containers in order (native sidecars keep running),
start the containers, restart them per ``restartPolicy`` with exponential back-off, run probes,
report ``status`` whenever it changes, and on deletion send SIGTERM, wait the grace period,
SIGKILL, report the final state and delete the object with ``gracePeriodSeconds=0``.
Everything cluster-wide (API calls, IP and GPU allocation, events) goes through :class:`PodHost`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from kubetune import logs
from kubetune.testing.kube import Kube, is_status
from kubetune.testing.nodeagent import dns, images, network, podstatus, volumes
from kubetune.testing.nodeagent import env as envmod
from kubetune.testing.nodeagent.config import AgentConfig
from kubetune.testing.nodeagent.containers import ContainerRun, Launch, now_iso
from kubetune.testing.nodeagent.network import PodNetwork

Obj = dict[str, Any]
log = logging.getLogger(__name__)
TICK = 0.1


class PodHost(Protocol):
    """What a pod worker needs from the agent."""

    kube: Kube
    config: AgentConfig
    network: PodNetwork

    def node_index(self, node: str) -> int: ...
    def allocate_ip(self, node_index: int) -> int: ...
    def free_ip(self, node_index: int, host: int) -> None: ...
    def allocate_gpus(self, node: str, uid: str, count: int) -> list[int]: ...
    def free_gpus(self, node: str, uid: str) -> None: ...
    def event(self, pod: Obj, kind: str, reason: str, message: str, container: str = "") -> None: ...
    def sources(self) -> volumes.Sources: ...
    def base_env(self) -> dict[str, str]: ...
    def marks(self) -> dict[str, str]: ...
    def forget(self, worker: PodWorker) -> None: ...


class PodWorker:
    """Runs one pod until it is deleted (or the agent stops)."""

    def __init__(self, host: PodHost, pod: Obj) -> None:
        self.host = host
        self.pod = pod
        meta, spec = pod["metadata"], pod["spec"]
        self.ns: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.node: str = spec["nodeName"]
        self.node_index = host.node_index(self.node)
        self.policy: str = spec.get("restartPolicy", "Always")
        self.host_network = bool(spec.get("hostNetwork"))
        self.pod_dir = host.config.pods_dir / self.uid
        self.delete_requested = threading.Event()
        self.stopping = threading.Event()  # agent shutdown: kill, but keep the object
        self.gone = False
        self.grace = float(spec.get("terminationGracePeriodSeconds", 30))
        self.pod_ip = ""
        self.netns: str | None = None
        self.ip_host: int | None = None
        self.start_time = now_iso()
        self.sandbox_ready = False
        self.init_done = False
        self.failed = False
        self.failure = ""  # status.message when the agent itself failed the pod
        self.terminal_reported = False
        self.volumes: dict[str, Path] = {}
        self.base_mounts: list[volumes.Mount] = []
        self.hostname: str = spec.get("hostname") or self.name
        self.last_status: Obj | None = None
        self.transitions = podstatus.Transitions()
        self.warned: set[tuple[str, str]] = set()

        def run(c: Obj, init: bool) -> ContainerRun:
            return ContainerRun(
                c,
                init=init,
                log_path=host.config.container_log(self.ns, self.name, c["name"]),
                work_dir=self.pod_dir / "containers" / c["name"],
                pod_ip="",
            )

        self.inits = [run(c, True) for c in spec.get("initContainers") or []]
        self.mains = [run(c, False) for c in spec.get("containers") or []]
        self.thread = threading.Thread(target=self.run, name=f"pod-{self.ns}/{self.name}", daemon=True)

    # ---- signals from the agent's watch --------------------------------------------------
    def update(self, pod: Obj) -> None:
        self.pod = pod
        meta = pod["metadata"]
        if meta.get("deletionTimestamp") and not self.delete_requested.is_set():
            if meta.get("deletionGracePeriodSeconds") is not None:
                self.grace = float(meta["deletionGracePeriodSeconds"])
            self.delete_requested.set()

    def removed(self, pod: Obj) -> None:
        """The object is gone from the API (force delete or finalizers done)."""
        self.gone = True
        self.update(pod)
        self.delete_requested.set()

    def shutdown(self) -> None:
        self.grace = min(self.grace, self.host.config.shutdown_grace_s)
        self.stopping.set()
        self.delete_requested.set()

    @property
    def all(self) -> list[ContainerRun]:
        return [*self.inits, *self.mains]

    def log_fields(self) -> dict[str, Any]:
        return logs.fields(pod=f"{self.ns}/{self.name}", node=self.node)

    # ---- main flow -----------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            # A bug or a host problem (e.g. netns creation) fails the pod visibly; the object stays
            # until someone deletes it, as with a real kubelet.
            log.exception("pod worker crashed", extra=self.log_fields())
            self.failed = True
            self.failure = f"kubetune test node agent: {type(exc).__name__}: {exc}"
            self._report()
            self.delete_requested.wait()
        finally:
            self._finish()

    def _run(self) -> None:
        self._report()
        self._setup_sandbox()
        self._report()
        while not self._prepare_volumes():
            if self.delete_requested.wait(1.0):
                return
        if self._run_inits():
            self._run_mains()
        if self._terminal():
            self._stop_all(grace=self.grace)
            self._report()
            self._teardown_sandbox()
            self.delete_requested.wait()

    def _finish(self) -> None:
        self._stop_all(grace=self.grace)
        self._teardown_sandbox()
        if not self.stopping.is_set() and not self.gone:
            self._finalise_status()
            try:
                self.host.kube.delete(
                    f"/api/v1/namespaces/{self.ns}/pods/{self.name}",
                    body={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
                )
            except Exception as exc:
                if not is_status(exc, 404, 409):
                    log.warning("deleting pod failed: %s", exc, extra=self.log_fields())
        self.host.forget(self)

    def _finalise_status(self) -> None:
        if self._terminal() and self.terminal_reported:
            return
        ok = all(c.exit_code == 0 for c in self.mains) and self.policy != "Always"
        self.failed = not ok
        for c in self.all:
            if not c.state.get("terminated") and c.container_id:
                c.record_exit(c.exit_code if c.exit_code is not None else 137)
            c.done = True
        self.init_done = True
        self._report()

    # ---- sandbox and volumes -------------------------------------------------------------
    def _setup_sandbox(self) -> None:
        if self.host_network:
            self.pod_ip = self.host.network.gateway
        else:
            self.ip_host = self.host.allocate_ip(self.node_index)
            self.netns, self.pod_ip = network.create_sandbox(self.host.network, self.node_index, self.ip_host)
        for c in self.all:
            c.pod_ip = self.pod_ip
        self.base_mounts = self._network_files()
        self.sandbox_ready = True

    def _network_files(self) -> list[volumes.Mount]:
        """/etc/hosts and /etc/resolv.conf of the pod (ClusterFirst DNS), as bind mounts."""
        spec = self.pod["spec"]
        if self.host_network or spec.get("dnsPolicy", "ClusterFirst") != "ClusterFirst":
            return []
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        fqdn = ""
        if spec.get("subdomain"):
            fqdn = f"{self.hostname}.{spec['subdomain']}.{self.ns}.svc.{dns.DOMAIN} "
        hosts = self.pod_dir / "hosts"
        hosts.write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{self.pod_ip}\t{fqdn}{self.hostname}\n"
        )
        resolv = self.pod_dir / "resolv.conf"
        resolv.write_text(dns.resolv_conf(self.ns, self.host.network.gateway))
        return [
            volumes.Mount(str(hosts), "/etc/hosts", False),
            volumes.Mount(str(resolv), "/etc/resolv.conf", False),
        ]

    def _teardown_sandbox(self) -> None:
        if self.ip_host is not None:
            network.delete_sandbox(self.host.network, self.node_index, self.ip_host)
            self.host.free_ip(self.node_index, self.ip_host)
            self.ip_host = None
            self.netns = None
        self.host.free_gpus(self.node, self.uid)

    def _ctx(self) -> envmod.PodContext:
        node_spec = self.host.config.nodes[self.node_index]
        return envmod.PodContext(self.pod, self.pod_ip, self.host.network.gateway, node_spec.capacity())

    def _prepare_volumes(self) -> bool:
        try:
            self.volumes = volumes.prepare(self.pod, self.pod_dir, self._ctx(), self.host.sources())
            return True
        except (volumes.VolumeError, envmod.ConfigError) as exc:
            self._warn_once("FailedMount", f"MountVolume.SetUp failed: {exc}")
            for c in self.all:
                c.set_waiting("ContainerCreating", str(exc))
            self._report()
            return False

    def _warn_once(self, reason: str, message: str, container: str = "") -> None:
        if (reason, message) not in self.warned:
            self.warned.add((reason, message))
            self.host.event(self.pod, "Warning", reason, message, container)

    # ---- containers ----------------------------------------------------------------------
    def _run_inits(self) -> bool:
        for c in self.inits:
            while not self.delete_requested.is_set():
                for side in self.inits:
                    if side.sidecar and side is not c and side.container_id:
                        self._tick(side)
                self._tick(c)
                if c.sidecar and c.running() and c.started:
                    break
                if c.done:
                    if c.exit_code == 0:
                        break
                    self.failed = True
                    self._report()
                    return False
                self._report()
                self.delete_requested.wait(TICK)
            if self.delete_requested.is_set():
                return False
        self.init_done = True
        self._report()
        return True

    def _run_mains(self) -> None:
        while not self.delete_requested.is_set():
            for c in self.all:
                if c.sidecar or not c.init:
                    self._tick(c)
            if self._terminal():
                break
            self._report()
            self.delete_requested.wait(TICK)

    def _restart_wanted(self, c: ContainerRun, code: int) -> bool:
        if c.sidecar:
            return not self._mains_done()
        if c.init:
            return code != 0 and self.policy != "Never"
        return self.policy == "Always" or (self.policy == "OnFailure" and code != 0)

    def _after_exit(self, c: ContainerRun, code: int) -> None:
        if code != 0:
            log.info(
                "container exited with %d",
                code,
                extra=logs.fields(container=c.name, **self.log_fields()["fields"]),
            )
        if not self._restart_wanted(c, code):
            c.done = True
            return
        cfg = self.host.config
        ran = time.monotonic() - c.started_mono if c.started_mono else 0.0
        c.backoff = (
            cfg.backoff_initial_s if (c.backoff == 0 or ran > 60) else min(c.backoff * 2, cfg.backoff_max_s)
        )
        c.next_start = time.monotonic() + c.backoff
        c.last_state = c.state
        msg = f"back-off {c.backoff:g}s restarting failed container={c.name} pod={self.name}_{self.ns}({self.uid})"
        c.set_waiting("CrashLoopBackOff", msg)
        if code != 0:
            self._warn_once("BackOff", "Back-off restarting failed container", c.name)

    def _tick(self, c: ContainerRun) -> None:
        code = c.poll_exit()
        if code is not None:
            self._after_exit(c, code)
        if c.done or c.running() or time.monotonic() < c.next_start:
            if c.running():
                self._probe(c)
            return
        self._start(c)

    def _probe(self, c: ContainerRun) -> None:
        verdict = c.run_probes(c.proc_env)
        for failure in c.probe_failures:
            self._warn_once("Unhealthy", failure, c.name)
        c.probe_failures.clear()
        if verdict is None:
            return
        self.host.event(
            self.pod,
            "Normal",
            "Killing",
            f"Container {c.name} failed {verdict} probe, will be restarted",
            c.name,
        )
        c.signal(signal.SIGTERM)
        deadline = time.monotonic() + min(self.grace, 30.0)
        while c.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        c.reap()
        code = c.poll_exit()
        if code is None:
            code = 137
            c.record_exit(code)
        self._after_exit(c, code)

    def _env_for(self, c: ContainerRun) -> dict[str, str]:
        base = self.host.base_env()
        base["HOSTNAME"] = self.node if self.host_network else self.hostname
        gpus = sum(
            int((x.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", 0))
            for x in self.pod["spec"].get("containers") or []
        )
        if gpus:
            ids = self.host.allocate_gpus(self.node, self.uid, gpus)
            base["NVIDIA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids)
        src = self.host.sources()
        return envmod.resolve(self._ctx(), c.spec, base, src.configmap, src.secret)

    def _start(self, c: ContainerRun) -> None:
        cfg = self.host.config
        try:
            env = self._env_for(c)
            command = [envmod.expand(a, env) for a in c.spec.get("command") or []]
            args = [envmod.expand(a, env) for a in c.spec.get("args") or []]
            rule, argv = images.argv_for(c.spec.get("image", ""), command, args, cfg.images, cfg.source)
            env = {**rule.env, **env}  # the image's ENV, under the pod's own
            mounts = volumes.container_mounts(c.spec, self.volumes, env)
        except images.ImageError as exc:
            c.set_waiting(exc.reason, exc.message)
            c.next_start = time.monotonic() + 5
            self._warn_once("Failed", f"Failed to pull image {c.spec.get('image')!r}: {exc.message}", c.name)
            return
        except (envmod.ConfigError, volumes.VolumeError) as exc:
            c.set_waiting("CreateContainerConfigError", str(exc))
            c.next_start = time.monotonic() + 1
            self._warn_once("Failed", f"Error: {exc}", c.name)
            return

        def resolve(cmd: list[str]) -> list[str]:
            _, full = images.argv_for(c.spec.get("image", ""), cmd, [], cfg.images, cfg.source)
            return images.locate(full, env.get("PATH", ""))

        c.resolve_exec = resolve
        c.proc_env = env
        if c.container_id:
            c.restart_count += 1
        try:
            argv = images.locate(argv, env.get("PATH", ""))
        except images.ImageError as exc:
            c.container_id = c.container_id or "kubetune://none"
            c.record_exit(128, exc.reason, exc.message)
            self._warn_once("Failed", exc.message, c.name)
            self._after_exit(c, 128)
            return
        workdir = c.spec.get("workingDir") or rule.workdir or str(c.work_dir / "cwd")
        launch = Launch(
            argv=argv,
            env={**env, **self.host.marks()},
            mounts=[
                *self.base_mounts,
                *mounts,
                *volumes.keep_visible([*self.base_mounts, *mounts], volumes.agent_paths()),
            ],
            workdir=workdir,
            netns=self.netns,
            hostname=self.node if self.host_network else self.hostname,
            created_log=cfg.state_dir / "mountpoints.txt",
        )
        error = c.start(launch)
        if error:
            c.record_exit(128, "StartError", error)
            self._warn_once("Failed", f"Error: {error}", c.name)
            self._after_exit(c, 128)
            return
        self.host.event(self.pod, "Normal", "Started", f"Started container {c.name}", c.name)

    def _stop_all(self, grace: float) -> None:
        running = [c for c in self.all if c.running()]
        for c in running:
            c.signal(signal.SIGTERM)
        if running:
            names = ", ".join(c.name for c in running)
            log.info("stopping containers %s (grace %.0fs)", names, grace, extra=self.log_fields())
            if not self.stopping.is_set():
                for c in running:
                    self.host.event(self.pod, "Normal", "Killing", f"Stopping container {c.name}", c.name)
        deadline = time.monotonic() + grace
        while any(c.running() for c in running) and time.monotonic() < deadline:
            time.sleep(0.05)
        for c in running:
            c.reap()
            code = c.poll_exit()
            if code is not None and not c.done:
                c.done = True

    # ---- status --------------------------------------------------------------------------
    def _view(self) -> podstatus.PodView:
        return podstatus.PodView(
            pod=self.pod,
            inits=self.inits,
            mains=self.mains,
            failed=self.failed,
            init_done=self.init_done,
            sandbox_ready=self.sandbox_ready,
            pod_ip=self.pod_ip,
            host_ip=self.host.network.gateway,
            start_time=self.start_time,
            failure=self.failure,
        )

    def _mains_done(self) -> bool:
        return podstatus.mains_done(self.mains)

    def _terminal(self) -> bool:
        return podstatus.phase(self._view()) in podstatus.TERMINAL

    def _report(self) -> None:
        if self.terminal_reported or self.gone:
            return
        status = podstatus.render(self._view(), self.transitions)
        if status == self.last_status:
            return
        try:
            self.host.kube.patch(
                f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status", {"status": status}, kind="strategic"
            )
        except Exception as exc:
            if is_status(exc, 404):
                self.gone = True
                self.delete_requested.set()
                return
            log.warning("status update failed: %s", exc, extra=self.log_fields())
            return
        self.last_status = status
        if status["phase"] in ("Succeeded", "Failed"):
            self.terminal_reported = True
            log.info("pod %s", status["phase"].lower(), extra=self.log_fields())
