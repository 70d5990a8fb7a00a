"""Owner references shared by every controller's builders: children point at the kubetune
object that made them, so Kubernetes garbage-collects them with it. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

from kubetune.api.v1alpha1 import API_VERSION, Resource


def owner_reference(owner: Resource) -> dict[str, Any]:
    """The controller owner reference to ``owner`` (which must be the stored object, with a UID)."""
    if not owner.metadata.name:
        raise ValueError(f"{owner.kind} has no metadata.name")
    if not owner.metadata.uid:
        raise ValueError(f"{owner.kind} has no metadata.uid; build children from the stored object")
    return {
        "apiVersion": API_VERSION,
        "kind": owner.kind,
        "name": owner.metadata.name,
        "uid": owner.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
