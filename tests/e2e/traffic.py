"""Client traffic for the end-to-end level, routed the way a Service routes it.

Service ClusterIPs are not routed on the test cluster, so :class:`PodTraffic` plays
kube-proxy's part: it lists the Ready pods of a ModelDeployment every half second and sends
``/generate`` requests round-robin to their pod IPs (replica-ratio routing: the canary's share
is its share of Ready pods), at a fixed rate from a background thread, counting answers per
revision. Every request names the served adapter, as clients of a ModelDeployment do: TGI's
``/generate`` with ``adapter_id``, or (``api="openai"``, for vLLM) ``/v1/completions`` with
``"model"``.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from kubetune.testing.kube import Kube


class PodTraffic:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        mdep: str,
        adapter: str,
        rate: float = 12.0,
        workers: int = 6,
        api: str = "tgi",
    ) -> None:
        self.kube, self.namespace, self.mdep, self.adapter = kube, namespace, mdep, adapter
        self.api = api
        self.rate = rate
        self.ok: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._pods: list[tuple[str, str]] = []  # (pod IP, revision)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._slots = threading.Semaphore(workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="e2e-traffic")
        self._threads = [
            threading.Thread(target=self._watch, name="e2e-endpoints", daemon=True),
            threading.Thread(target=self._send_loop, name="e2e-traffic", daemon=True),
        ]
        self._http = requests.Session()

    def __enter__(self) -> PodTraffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._pool.shutdown(wait=True)

    def counts(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return {rev: (self.ok[rev], self.failed[rev]) for rev in set(self.ok) | set(self.failed)}

    def _ready_pods(self) -> list[tuple[str, str]]:
        pods = self.kube.list(
            f"/api/v1/namespaces/{self.namespace}/pods",
            labelSelector=f"kubetune.io/modeldeployment={self.mdep}",
        )
        out = []
        for p in pods:
            status: dict[str, Any] = p.get("status") or {}
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
            )
            if ready and status.get("podIP") and not p["metadata"].get("deletionTimestamp"):
                out.append((status["podIP"], p["metadata"]["labels"]["kubetune.io/revision"]))
        return sorted(out)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self._ready_pods()
            except Exception:  # the API server is slow under load; keep the last endpoints
                pods = None
            if pods is not None:
                with self._lock:
                    self._pods = pods
            self._stop.wait(0.5)

    def _send_loop(self) -> None:
        counter = itertools.count()
        while not self._stop.wait(1.0 / self.rate):
            with self._lock:
                pods = list(self._pods)
            if not pods or not self._slots.acquire(blocking=False):
                continue
            ip, rev = pods[next(counter) % len(pods)]
            self._pool.submit(self._send, ip, rev)

    def _send(self, ip: str, rev: str) -> None:
        prompt = "Which team answers billing questions?"
        path = "/generate"
        body: dict[str, Any] = {
            "inputs": prompt,
            "parameters": {"max_new_tokens": 4, "do_sample": False, "adapter_id": self.adapter},
        }
        if self.api == "openai":
            path = "/v1/completions"
            body = {"model": self.adapter, "prompt": prompt, "max_tokens": 4, "temperature": 0}
        try:
            ok = self._http.post(f"http://{ip}:8080{path}", json=body, timeout=10).status_code == 200
        except requests.RequestException:
            ok = False
        finally:
            self._slots.release()
        with self._lock:
            (self.ok if ok else self.failed)[rev] += 1
