"""Small helpers both controllers need around stored objects: kopf's bookkeeping, status patches."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def without_kopf(obj: Obj) -> Obj:
    """The object as the API models know it: kopf's bookkeeping in status is dropped."""
    out = {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "metadata", "spec", "status")}
    status = out.get("status")
    if isinstance(status, dict):
        out["status"] = {k: v for k, v in status.items() if k != "kopf"}
    return out


def status_patch(obj: Obj, wire: Obj) -> Obj | None:
    """The merge patch that makes ``obj``'s status equal ``wire``; None when nothing changed.

    A merge patch keeps what it does not mention, so a field that became unset (a canary
    revision after a promotion) is sent as null to be removed.
    """
    stored = {k: v for k, v in (obj.get("status") or {}).items() if k != "kopf"}
    if wire == stored and obj.get("status"):
        return None
    gone = dict.fromkeys(k for k in stored if k not in wire)
    return {"status": {**gone, **wire}}
