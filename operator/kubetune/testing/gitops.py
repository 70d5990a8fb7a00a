"""What GitOps tools make of live kubetune objects, computed by their real parts.

:func:`kstatus` pipes objects through ``hack/kstatus`` (sigs.k8s.io/cli-utils' kstatus package,
what Flux, kpt and cli-utils wait on), built and cached by ``hack/build-kstatus.sh``.
:func:`argocd_health` runs one of the chart's Argo CD health scripts
(``charts/kubetune/argocd/<kind>.lua``) in a real Lua interpreter (Debian's ``lua5.4``) with the
object as the global ``obj``, as Argo CD's controller does, and returns ``hs.status`` and
``hs.message``. Test support only; nothing here is imported by the operator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
ARGOCD_DIR = REPO / "charts" / "kubetune" / "argocd"
KSTATUS_CACHE = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune")) / "kstatus"
BUILD_HINT = "run hack/build-kstatus.sh (or set KUBETUNE_KSTATUS to a kstatus binary)"
LUA_HINT = "install Debian's lua5.4 (apt-get install lua5.4; hack/setup.sh does) or set KUBETUNE_LUA"


def find_kstatus() -> str | None:
    """``$KUBETUNE_KSTATUS``, else the newest build in the cache, else None."""
    explicit = os.environ.get("KUBETUNE_KSTATUS")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    built = sorted(KSTATUS_CACHE.glob("*/bin/kstatus"), key=lambda p: p.stat().st_mtime)
    return str(built[-1]) if built else None


def find_lua() -> str | None:
    """``$KUBETUNE_LUA``, else ``lua5.4`` on PATH, else None."""
    explicit = os.environ.get("KUBETUNE_LUA")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("lua5.4")


def kstatus(binary: str, *objects: dict[str, Any]) -> list[dict[str, str]]:
    """kstatus's verdict on each object: ``{"kind", "name", "status", "message"}``."""
    done = subprocess.run(
        [binary], input=json.dumps(list(objects)), capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kstatus exited {done.returncode}: {done.stderr.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def lua_literal(value: Any) -> str:
    """``value`` (decoded JSON) as a Lua expression; JSON null becomes nil, as in Argo CD."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        out = []
        for byte in value.encode():
            char = chr(byte)
            out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} is not JSON")


def argocd_health(lua: str, kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """``(hs.status, hs.message)`` of the chart's health script for ``kind`` on ``obj``."""
    script = ARGOCD_DIR / f"{kind.lower()}.lua"
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = assert(loadfile({lua_literal(str(script))}))()\n"
        'io.write(tostring(hs.status), "\\n", tostring(hs.message))\n'
    )
    done = subprocess.run([lua, "-"], input=program, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} failed in {lua}: {done.stderr.strip()}")
    status, _, message = done.stdout.partition("\n")
    return status, message
