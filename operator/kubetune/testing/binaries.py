"""Where the control-plane binaries are: built by ``hack/build-control-plane.sh``, never in git.

Lookup order per binary: ``TEST_ASSET_<NAME>`` (envtest's convention, e.g.
``TEST_ASSET_KUBE_APISERVER``), then ``$KUBEBUILDER_ASSETS/<name>``, then the build script's
cache ``${KUBETUNE_CACHE:-~/.cache/kubetune}/control-plane/k8s-<v>-etcd-<v>/bin``. Versions
come from ``K8S_VERSION`` and ``ETCD_VERSION`` like in the script. Filesystem checks only.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

K8S_VERSION = os.environ.get("K8S_VERSION", "1.37.2")
ETCD_VERSION = os.environ.get("ETCD_VERSION", "3.6.16")
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
BUILD_HINT = (
    "build them with `hack/build-control-plane.sh` (about 11 minutes cold on 2 cores, cached "
    "afterwards) or point KUBEBUILDER_ASSETS at a directory that holds all of them"
)


class BinariesNotFound(FileNotFoundError):
    """The control-plane binaries are not where the harness looks."""


@dataclasses.dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path


def default_bin_dir() -> Path:
    """Where ``hack/build-control-plane.sh`` puts the binaries for the default versions."""
    cache = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune"))
    return cache / "control-plane" / f"k8s-{K8S_VERSION}-etcd-{ETCD_VERSION}" / "bin"


def find_binaries() -> Binaries:
    """Locate all five binaries or raise :class:`BinariesNotFound` saying how to build them."""
    dirs = [Path(d) for d in (os.environ.get("KUBEBUILDER_ASSETS"),) if d] + [default_bin_dir()]
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in NAMES:
        override = os.environ.get("TEST_ASSET_" + name.upper().replace("-", "_"))
        candidates = [Path(override)] if override else [d / name for d in dirs]
        path = next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)
        if path is None:
            missing.append(name)
        else:
            found[name.replace("-", "_")] = path
    if missing:
        where = ", ".join(str(d) for d in dirs)
        raise BinariesNotFound(
            f"control-plane binaries missing ({', '.join(missing)}) in {where}; {BUILD_HINT}"
        )
    return Binaries(**found)
