"""Pod volumes as host directories, and each container's bind mounts of them.

Supported: ``configMap``, ``secret``, ``downwardAPI``, ``projected`` (serviceAccountToken via
the TokenRequest API, configMap, secret, downwardAPI), ``emptyDir``, ``persistentVolumeClaim``
(the bound PV's hostPath, see storage.py) and ``hostPath``. Contents are written once, when
the pod starts; later ConfigMap/Secret changes are not synced. The sandbox shim does the
mounting; this module only writes files and computes mount lists.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import kubetune
from kubetune.testing.nodeagent import env as envmod

Obj = dict[str, Any]
TokenFunc = Callable[[str, str, str | None, int], str]  # (namespace, sa, audience, ttl) -> token
PvcFunc = Callable[[str, str], Path | None]  # (namespace, claim) -> host dir, None if unbound


class VolumeError(Exception):
    """A volume cannot be set up yet (missing source, unbound claim)."""


@dataclasses.dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool

    def as_json(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target, "readOnly": self.read_only}


@dataclasses.dataclass
class Sources:
    """Where volume contents come from (the agent's API lookups)."""

    configmap: envmod.Lookup
    secret: envmod.Lookup
    token: TokenFunc
    pvc: PvcFunc


def _write(dest: Path, rel: str, data: bytes, mode: int) -> None:
    path = dest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _write_keys(dest: Path, data: Mapping[str, bytes], items: list[Obj] | None, mode: int, what: str) -> None:
    if not items:
        for key, value in data.items():
            _write(dest, key, value, mode)
        return
    for item in items:
        if item["key"] not in data:
            raise VolumeError(f"couldn't find key {item['key']} in {what}")
        _write(dest, item["path"], data[item["key"]], int(item.get("mode", mode)))


def _downward(dest: Path, ctx: envmod.PodContext, items: list[Obj], mode: int) -> None:
    for item in items:
        if "fieldRef" in item:
            value = envmod.field_value(ctx, item["fieldRef"]["fieldPath"])
        else:
            value = envmod.resource_value(ctx, "", item["resourceFieldRef"])
        _write(dest, item["path"], value.encode(), int(item.get("mode", mode)))


def _configmap(dest: Path, ns: str, src: Obj, mode: int, sources: Sources) -> None:
    cm = sources.configmap(ns, src["name"])
    if cm is None:
        if src.get("optional"):
            return
        raise VolumeError(f'configmap "{src["name"]}" not found')
    _write_keys(dest, envmod.configmap_items(cm), src.get("items"), mode, f'configmap "{src["name"]}"')


def _secret(dest: Path, ns: str, name: str, src: Obj, mode: int, sources: Sources) -> None:
    sec = sources.secret(ns, name)
    if sec is None:
        if src.get("optional"):
            return
        raise VolumeError(f'secret "{name}" not found')
    _write_keys(dest, envmod.secret_items(sec), src.get("items"), mode, f'secret "{name}"')


def prepare(pod: Obj, pod_dir: Path, ctx: envmod.PodContext, sources: Sources) -> dict[str, Path]:
    """Materialise every volume of ``pod`` under ``pod_dir``; returns name -> host path."""
    ns = pod["metadata"]["namespace"]
    sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    paths: dict[str, Path] = {}
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = vol["name"]
        dest = pod_dir / "volumes" / name
        dest.mkdir(parents=True, exist_ok=True)
        if "configMap" in vol:
            src = vol["configMap"]
            _configmap(dest, ns, src, int(src.get("defaultMode", 0o644)), sources)
        elif "secret" in vol:
            src = vol["secret"]
            _secret(dest, ns, src["secretName"], src, int(src.get("defaultMode", 0o644)), sources)
        elif "downwardAPI" in vol:
            src = vol["downwardAPI"]
            _downward(dest, ctx, src.get("items") or [], int(src.get("defaultMode", 0o644)))
        elif "projected" in vol:
            mode = int(vol["projected"].get("defaultMode", 0o644))
            for part in vol["projected"].get("sources") or []:
                if "serviceAccountToken" in part:
                    tok = part["serviceAccountToken"]
                    token = sources.token(
                        ns, sa, tok.get("audience"), int(tok.get("expirationSeconds", 3600))
                    )
                    _write(dest, tok["path"], token.encode(), mode)
                elif "configMap" in part:
                    _configmap(dest, ns, part["configMap"], mode, sources)
                elif "secret" in part:
                    _secret(dest, ns, part["secret"]["name"], part["secret"], mode, sources)
                elif "downwardAPI" in part:
                    _downward(dest, ctx, part["downwardAPI"].get("items") or [], mode)
        elif "emptyDir" in vol:
            pass
        elif "persistentVolumeClaim" in vol:
            claim = vol["persistentVolumeClaim"]["claimName"]
            found = sources.pvc(ns, claim)
            if found is None:
                raise VolumeError(
                    f'persistentvolumeclaim "{claim}" is not bound to a volume this agent serves'
                )
            dest = found
        elif "hostPath" in vol:
            dest = Path(vol["hostPath"]["path"])
            if vol["hostPath"].get("type") in ("DirectoryOrCreate", None, ""):
                dest.mkdir(parents=True, exist_ok=True)
        else:
            kind = next((k for k in vol if k != "name"), "?")
            raise VolumeError(f"volume {name!r}: type {kind!r} is not supported by the test node agent")
        paths[name] = dest
    return paths


def container_mounts(container: Obj, volumes: Mapping[str, Path], env: Mapping[str, str]) -> list[Mount]:
    """The bind mounts for ``container``'s volumeMounts (subPath and subPathExpr included)."""
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        base = volumes.get(vm["name"])
        if base is None:
            raise VolumeError(f"volumeMount {vm['name']!r} names no volume of the pod")
        sub = vm.get("subPath") or envmod.expand(vm.get("subPathExpr", ""), env)
        source = base / sub if sub else base
        if sub and not source.exists():
            source.mkdir(parents=True, exist_ok=True)
        mounts.append(Mount(str(source), vm["mountPath"], bool(vm.get("readOnly"))))
    return mounts


def agent_paths() -> list[Path]:
    """Host paths the containers' programs come from: this Python, its virtualenv and the repo.

    Pods run as host processes, so these must stay visible inside the pod's mount namespace.
    """
    repo = Path(kubetune.__file__).resolve().parents[2]
    return sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), repo})


def keep_visible(mounts: Sequence[Mount], paths: Sequence[Path]) -> list[Mount]:
    """Read-only identity binds for the ``paths`` a pod mount would hide.

    An emptyDir at /tmp hides a repo checked out under /tmp (and with it the container's own
    interpreter); binding the path back on top (the sandbox mounts parents first) keeps it.
    """
    out: list[Mount] = []
    for path in paths:
        if any(path != Path(m.target) and path.is_relative_to(m.target) for m in mounts):
            out.append(Mount(str(path), str(path), True))
    return out
