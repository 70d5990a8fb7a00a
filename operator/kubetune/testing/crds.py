"""Installing CustomResourceDefinitions into the test cluster and waiting until they serve.

``install`` creates or replaces every CRD found in the given files or directories and waits
for ``Established``; ``install_each`` does it file by file and reports what the API server
refused, so one bad CRD does not hide the others. API calls only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

import yaml

from kubetune.testing.kube import ApiException, Kube
from kubetune.testing.waiting import wait_for

BASE = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class CrdRejected(RuntimeError):
    """kube-apiserver refused a CustomResourceDefinition; the message quotes its reason."""


@dataclasses.dataclass(frozen=True)
class CrdReport:
    """Outcome of :func:`install_each`."""

    files: list[Path]
    installed: list[str]
    rejected: dict[str, str]  # file name -> the API server's message


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc)


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    return files


def established(kube: Kube, name: str) -> bool:
    crd = kube.get(f"{BASE}/{name}")
    conds = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
    return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"


def install(kube: Kube, paths: Iterable[Path], timeout: float = 30) -> list[str]:
    """Create or update every CRD in ``paths``; wait until each is Established; return names."""
    names: list[str] = []
    for file in yaml_files(paths):
        for doc in yaml.safe_load_all(file.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            name = doc["metadata"]["name"]
            existing = kube.get_or_none(f"{BASE}/{name}")
            try:
                if existing is None:
                    kube.create(BASE, doc)
                else:
                    doc["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                    kube.replace(f"{BASE}/{name}", doc)
            except ApiException as exc:
                raise CrdRejected(f"the API server rejected CRD {name} from {file}: {_message(exc)}") from exc
            names.append(name)
    for name in names:
        wait_for(lambda n=name: established(kube, n), timeout, f"CRD {name} to be Established")  # type: ignore[misc]
    return names


def install_each(kube: Kube, paths: Iterable[Path], timeout: float = 30) -> CrdReport:
    """Like :func:`install`, one file at a time, collecting rejections instead of raising."""
    files = yaml_files(paths)
    installed: list[str] = []
    rejected: dict[str, str] = {}
    for file in files:
        try:
            installed += install(kube, [file], timeout)
        except CrdRejected as exc:
            rejected[file.name] = str(exc)
    return CrdReport(files, installed, rejected)
