"""What a trainer pod is given: environment variable names and mount paths.

The operator's builders (``controllers/finetunejob/builders.py``) set these in every preflight
and training pod; the trainer reads them (``trainer/spec.py``, ``sources.py``,
``statussink.py``, ``publish.py``) and falls back to local-mode defaults when they are unset.
The ModelDeployment builders mount registry credentials and claims at the same paths.
:func:`plain_http_hosts` is the one reading of ``KUBETUNE_REGISTRY_INSECURE``. Pure.
"""

from __future__ import annotations

import dataclasses
from typing import Final

# --- environment variables (operator -> trainer) --------------------------------------------
JOB_NAME: Final = "KUBETUNE_JOB_NAME"  # the FineTuneJob's name (its status is patched live)
JOB_UID: Final = "KUBETUNE_JOB_UID"  # the trainer refuses a mounted spec of another uid
NAMESPACE: Final = "KUBETUNE_NAMESPACE"
REGISTRY: Final = "KUBETUNE_REGISTRY"  # where a cluster run pushes (oci://host/repository)
REGISTRY_INSECURE: Final = "KUBETUNE_REGISTRY_INSECURE"  # registry hosts that talk plain HTTP
SOURCES_DIR: Final = "KUBETUNE_SOURCES_DIR"  # where fetched models and datasets are cached
PVC_ROOT_ENV: Final = "KUBETUNE_PVC_ROOT"  # pvc://claim/path -> $KUBETUNE_PVC_ROOT/claim/path
CONFIGMAP_ROOT_ENV: Final = "KUBETUNE_CONFIGMAP_ROOT"  # configmap://name/key -> root/name/key
DATASET_TOKEN: Final = "KUBETUNE_DATASET_TOKEN"  # bearer token of an https:// dataset

# --- paths inside the pod -------------------------------------------------------------------
SPEC_MOUNT: Final = "/etc/kubetune"
SPEC_FILE: Final = f"{SPEC_MOUNT}/spec.yaml"
WORK_DIR: Final = "/var/lib/kubetune"  # HOME, TMPDIR and the run's output
CHECKPOINT_DIR: Final = "/checkpoints"
PVC_ROOT: Final = "/mnt/pvc"  # also the trainer's default without $KUBETUNE_PVC_ROOT
CONFIGMAP_ROOT: Final = "/mnt/configmaps"
CACHE_DIR: Final = "/var/cache/kubetune"  # the operator's shared cache claim, when it has one
REGISTRY_AUTH_DIR: Final = "/var/run/kubetune/registry"  # DOCKER_CONFIG: config.json from a Secret
TERMINATION_LOG: Final = "/dev/termination-log"

KEEP_CHECKPOINTS: Final = 3  # complete checkpoints kept on disk (trainer --keep-checkpoints)


@dataclasses.dataclass(frozen=True)
class PlainHttp:
    """Which registry hosts are reached over plain HTTP instead of TLS."""

    every_host: bool = False
    hosts: tuple[str, ...] = ()  # host[:port], lowercase

    def covers(self, host: str) -> bool:
        return self.every_host or host.lower() in self.hosts


def plain_http_hosts(value: str | None) -> PlainHttp:
    """``KUBETUNE_REGISTRY_INSECURE``: empty, ``false``, ``0`` or ``no`` for none; ``true``,
    ``1`` or ``yes`` for every host (local development; the operator refuses it); otherwise a
    comma list of ``host[:port]``."""
    text = (value or "").strip().lower()
    if text in ("", "false", "0", "no"):
        return PlainHttp()
    if text in ("true", "1", "yes"):
        return PlainHttp(every_host=True)
    return PlainHttp(hosts=tuple(sorted({h.strip() for h in text.split(",") if h.strip()})))
