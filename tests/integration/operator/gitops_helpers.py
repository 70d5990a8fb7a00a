"""Helpers of the GitOps health tests: judge a live object with kstatus and the Argo CD script.

:class:`Timeline` polls one object until a condition holds and keeps, for each phase it saw,
the first snapshot with both verdicts, so a test can state what each phase must look like to
Flux (kstatus) and to Argo CD.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from kubetune.testing import gitops
from kubetune.testing.kube import Kube


@dataclasses.dataclass(frozen=True)
class Verdict:
    phase: str
    kstatus: str
    kstatus_message: str
    argocd: str
    argocd_message: str
    obj: dict[str, Any]

    def __str__(self) -> str:
        conds = [
            (c["type"], c["status"], c.get("reason"))
            for c in (self.obj.get("status") or {}).get("conditions") or []
        ]
        return (
            f"{self.phase}: kstatus {self.kstatus} ({self.kstatus_message!r}), "
            f"Argo CD {self.argocd} ({self.argocd_message!r}); conditions {conds}"
        )


def judge(kstatus: str, lua: str, obj: dict[str, Any], label: str | None = None) -> Verdict:
    (flux,) = gitops.kstatus(kstatus, obj)
    argo, message = gitops.argocd_health(lua, obj["kind"], obj)
    phase = label or str((obj.get("status") or {}).get("phase") or "<no status>")
    return Verdict(phase, flux["status"], flux["message"], argo, message, obj)


@dataclasses.dataclass
class Timeline:
    """The first verdict for each phase an object went through, in order."""

    kube: Kube
    kstatus: str
    lua: str
    path: str
    seen: dict[str, Verdict] = dataclasses.field(default_factory=dict)

    def record(self, obj: dict[str, Any], label: str | None = None) -> Verdict:
        verdict = judge(self.kstatus, self.lua, obj, label)
        key = label or verdict.phase
        if key not in self.seen:
            self.seen[key] = verdict
        return verdict

    def until(self, done: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> Verdict:
        """Poll (every 0.2 s) until ``done(obj)``; the verdict of that last snapshot."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.kube.get(self.path)
            verdict = self.record(obj)
            if done(obj):
                return verdict if verdict.obj is obj else judge(self.kstatus, self.lua, obj)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.report()}")
            time.sleep(0.2)

    def report(self) -> str:
        return "\n".join(str(v) for v in self.seen.values())


def phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj.get("status"), indent=1)[:3000]
