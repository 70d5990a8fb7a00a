"""Small helpers both controllers need around stored objects: kopf's bookkeeping, status
patches, whether a stored child already says what its manifest says, and whose it is."""

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


def covers(stored: Any, desired: Any) -> bool:
    """Whether ``stored`` already says everything ``desired`` says.

    The API server fills in defaults (a Service port's protocol, an HTTPRoute rule's path
    match, a parentRef's group and kind), so a stored object is never equal to the manifest it
    came from. Fields the manifest leaves out are the server's; dicts are compared on the
    manifest's keys, lists item by item at the same length, everything else by equality.
    """
    if isinstance(desired, dict):
        return isinstance(stored, dict) and all(covers(stored.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(desired)
            and all(covers(s, d) for s, d in zip(stored, desired, strict=True))
        )
    return bool(stored == desired)


def owned_by(obj: Obj, uid: str | None) -> bool:
    """Whether ``obj`` has an owner reference to the object with ``uid``.

    Names can be taken by anyone with create rights in the namespace; a uid cannot, so a child
    found under the expected name is only ours when it points at our uid.
    """
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(isinstance(r, dict) and r.get("uid") == uid for r in refs)


def owner_named(obj: Obj, kind: str, name: str) -> dict[str, Any] | None:
    """The owner reference of ``obj`` to a ``kind`` called ``name``, whatever its uid."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next(
        (r for r in refs if isinstance(r, dict) and r.get("kind") == kind and r.get("name") == name),
        None,
    )
