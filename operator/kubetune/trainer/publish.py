"""Push a finished run's adapter (or whole model) with its lineage to an OCI registry.

Used by local mode (``kubetune run``, target ``spec.output.repository`` or the local layout
registry) and by the training pod (``python -m kubetune.trainer train``, target the
``KUBETUNE_REGISTRY`` the operator sets). :mod:`kubetune.registry` is imported lazily so that
training works without it; network access stays in :mod:`kubetune.clients` behind it. Raises
:class:`kubetune.registry.RegistryError` (one-line ``str()``) on a failed push.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kubetune.trainer.result import Pushed, RunResult
from kubetune.trainer.spec import JobSpec

ENV_REGISTRY = "KUBETUNE_REGISTRY"
ENV_INSECURE = "KUBETUNE_REGISTRY_INSECURE"


def tag_for(job: JobSpec) -> str:
    """``spec.output.tag``, else ``<job name>-<generation or 1>``."""
    return job.spec.output.tag or f"{job.name}-{job.generation or 1}"


def artifact_config(job: JobSpec, result: RunResult) -> dict[str, Any]:
    """The lineage config of the pushed artifact (:class:`kubetune.registry.ArtifactConfig`)."""
    assert result.artifacts is not None
    lineage = result.lineage
    return {
        "kind": result.artifacts.registry_kind,
        "baseModel": {"uri": lineage["baseModel"]["uri"], "revision": lineage["baseModel"].get("revision")},
        "method": lineage["method"],
        "hyperparameters": lineage["hyperparameters"],
        "dataset": {"uri": lineage["dataset"]["uri"], "sha256": lineage["dataset"]["sha256"]},
        "seed": lineage["seed"],
        "metrics": [m.model_dump(mode="json", exclude_none=True) for m in result.metrics],
        "sourceJob": {"name": job.name, **({"namespace": job.namespace} if job.namespace else {})},
    }


def push(job: JobSpec, result: RunResult, repository: str | None) -> Pushed:
    """Push ``result``'s primary artifact to ``repository`` (``oci://host/repo`` or a layout
    path; ``None``: the local layout registry) under :func:`tag_for`; returns the pinned ref."""
    from kubetune import registry
    from kubetune.registry import reference

    assert result.artifacts is not None and result.artifacts.primary is not None
    tag = tag_for(job)
    target: Any = f"{repository}:{tag}" if repository else reference.local(job.name, tag)
    insecure = job.spec.output.insecure or _truthy(os.environ.get(ENV_INSECURE))
    # insecure=None leaves KUBETUNE_REGISTRY_INSECURE host lists to the registry's own handling
    options = registry.Options(insecure=True) if insecure else None
    ref = registry.push_directory(
        result.artifacts.primary, target, artifact_config(job, result), options=options
    )
    return Pushed(ref=str(ref), tag=tag)


def cluster_target(environ: Mapping[str, str] | None = None) -> str | None:
    """The training pod's registry (``KUBETUNE_REGISTRY``), or None outside a cluster."""
    value = (os.environ if environ is None else environ).get(ENV_REGISTRY, "").strip()
    return value or None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")
