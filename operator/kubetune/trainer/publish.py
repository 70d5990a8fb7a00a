"""Push a finished run's adapter (or whole model) with its lineage to an OCI registry.

Used by local mode (``kubetune run``, target ``spec.output.repository`` or the local layout
registry) and by the training pod (``python -m kubetune.trainer train``, target the
``KUBETUNE_REGISTRY`` the operator sets). :mod:`kubetune.registry` is imported lazily so that
training works without it; it owns the network access of a push. Raises
:class:`kubetune.registry.RegistryError` (one-line ``str()``) on a failed push.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kubetune.api.contract import pod
from kubetune.api.contract.result import Pushed, RunResult
from kubetune.trainer.spec import JobSpec


def tag_for(job: JobSpec) -> str:
    """``spec.output.tag``, else ``<job name>-<generation or 1>[-<first 8 of the job's uid>]``.

    The uid (cluster mode) keeps a deleted and re-created job of the same name from moving the
    earlier run's tag; the digest an Adapter pins stays pullable either way.
    """
    if job.spec.output.tag:
        return job.spec.output.tag
    suffix = f"-{job.generation or 1}" + (f"-{job.uid[:8]}" if job.uid else "")
    return job.name[: 128 - len(suffix)].rstrip("._-") + suffix


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
        # the uid tells a re-created job of the same name apart (and so gives it its own digest)
        "sourceJob": {
            "name": job.name,
            **({"namespace": job.namespace} if job.namespace else {}),
            **({"uid": job.uid} if job.uid else {}),
            **({"generation": job.generation} if job.generation else {}),
        },
    }


def push(job: JobSpec, result: RunResult, repository: str | None) -> Pushed:
    """Push ``result``'s primary artifact to ``repository`` (``oci://host/repo`` or a layout
    path; ``None``: the local layout registry) under :func:`tag_for`; returns the pinned ref."""
    from kubetune import registry
    from kubetune.registry import reference

    assert result.artifacts is not None and result.artifacts.primary is not None
    tag = tag_for(job)
    target: Any = f"{repository}:{tag}" if repository else reference.local(job.name, tag)
    ref = registry.push_directory(
        result.artifacts.primary, target, artifact_config(job, result), options=_options(job)
    )
    return Pushed(ref=str(ref), tag=tag)


def check(job: JobSpec, repository: str) -> str | None:
    """Why ``repository``'s registry cannot take the push at the end of the run (unreachable,
    TLS, credentials refused), as one line naming the field; None when it answers."""
    from kubetune import registry

    try:
        registry.check(repository, options=_options(job))
    except registry.RegistryError as exc:
        field = "spec.output.repository" if job.spec.output.repository else "the operator's registry"
        return (
            f"{field}: cannot reach {repository} to push the result, so training would be wasted: "
            f"{exc}; fix the address, the network path or spec.output.secretRef"
        )
    return None


def _options(job: JobSpec) -> Any:
    from kubetune import registry

    # otherwise the registry reads KUBETUNE_REGISTRY_INSECURE itself (pod.plain_http_hosts)
    return registry.Options(insecure=True) if job.spec.output.insecure else None


def cluster_target(environ: Mapping[str, str] | None = None) -> str | None:
    """The training pod's registry (``KUBETUNE_REGISTRY``), or None outside a cluster."""
    value = (os.environ if environ is None else environ).get(pod.REGISTRY, "").strip()
    return value or None
