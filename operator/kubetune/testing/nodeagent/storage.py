"""A local-directory volume provisioner, so PersistentVolumeClaims bind and pods schedule.

The agent creates a default StorageClass (``standard``, provisioner ``kubetune.io/local-dir``)
and, for each pending claim of that class, a PersistentVolume with a ``hostPath`` under
``<state>/volumes/pvc-<uid>`` pre-bound to the claim; the controller-manager's binder then
binds them. Released volumes it provisioned are deleted with their directories. A pod's claim
resolves to the bound PV's host path. API calls and directory creation only.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from kubetune.testing.kube import Kube, is_status
from kubetune.testing.nodeagent.config import AgentConfig

Obj = dict[str, Any]
log = logging.getLogger(__name__)
PROVISIONER = "kubetune.io/local-dir"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


class Provisioner:
    """Provision and clean up hostPath PVs for the agent's StorageClass."""

    def __init__(self, kube: Kube, cfg: AgentConfig) -> None:
        self.kube = kube
        self.cfg = cfg

    def ensure_storage_class(self) -> None:
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": self.cfg.storage_class, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
        try:
            self.kube.create("/apis/storage.k8s.io/v1/storageclasses", body)
        except Exception as exc:
            if not is_status(exc, 409):
                raise

    def _our_classes(self) -> tuple[set[str], dict[str, str]]:
        """Names of classes served by this provisioner, and each class's binding mode."""
        ours: set[str] = set()
        modes: dict[str, str] = {}
        for sc in self.kube.list("/apis/storage.k8s.io/v1/storageclasses"):
            name = sc["metadata"]["name"]
            modes[name] = sc.get("volumeBindingMode", "Immediate")
            if sc.get("provisioner") == PROVISIONER:
                ours.add(name)
        return ours, modes

    def sync(self, cleanup: bool = True) -> None:
        """One pass: provision pending claims; with ``cleanup``, delete released volumes."""
        pending = [
            pvc
            for pvc in self.kube.list("/api/v1/persistentvolumeclaims")
            if (pvc.get("status") or {}).get("phase", "Pending") == "Pending"
        ]
        if pending:
            self._provision_pending(pending)
        if cleanup:
            self._delete_released()

    def _provision_pending(self, claims: list[Obj]) -> None:
        ours, modes = self._our_classes()
        for pvc in claims:
            cls = (pvc.get("spec") or {}).get("storageClassName")
            if pvc["spec"].get("volumeName") or cls not in ours:
                continue
            selected = (pvc["metadata"].get("annotations") or {}).get("volume.kubernetes.io/selected-node")
            if modes.get(cls) == "WaitForFirstConsumer" and not selected:
                continue
            self._provision(pvc)

    def _delete_released(self) -> None:
        for pv in self.kube.list("/api/v1/persistentvolumes"):
            ann = pv["metadata"].get("annotations") or {}
            if ann.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                continue
            if (pv.get("status") or {}).get("phase") == "Released" and pv["spec"].get(
                "persistentVolumeReclaimPolicy"
            ) == "Delete":
                self.kube.delete(f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
                shutil.rmtree(pv["spec"].get("hostPath", {}).get("path", "/nonexistent"), ignore_errors=True)

    def _provision(self, pvc: Obj) -> None:
        meta = pvc["metadata"]
        name = f"pvc-{meta['uid']}"
        path = self.cfg.volumes_dir / name
        path.mkdir(parents=True, exist_ok=True)
        spec = pvc["spec"]
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.get("storageClassName"),
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        try:
            self.kube.create("/api/v1/persistentvolumes", body)
            log.info("provisioned %s for claim %s/%s", name, meta["namespace"], meta["name"])
        except Exception as exc:
            if not is_status(exc, 409):
                raise

    def claim_path(self, namespace: str, claim: str) -> Path | None:
        """Host directory behind a bound claim; None while it is unbound."""
        pvc = self.kube.get_or_none(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        if pvc is None or not (pvc.get("spec") or {}).get("volumeName"):
            return None
        pv = self.kube.get_or_none(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
        if pv is None:
            return None
        spec = pv.get("spec") or {}
        raw = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
        path = Path(raw) if raw else self.cfg.volumes_dir / f"{namespace}-{claim}"
        path.mkdir(parents=True, exist_ok=True)
        return path
