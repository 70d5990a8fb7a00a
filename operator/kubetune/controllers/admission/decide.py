"""The admission decision: may this user apply this object? Pure: no I/O, no clock.

A FineTuneJob or ModelDeployment makes the operator act with its own, wider rights: mount a
Secret into a pod, mount a claim, run an image. Whoever applies the object may therefore only
reference what they could use themselves. :func:`references` lists every Secret, ConfigMap and
PersistentVolumeClaim an object names, and a custom image (which needs ``create pods``);
:func:`denials` asks an ``allowed(verb, resource, name)`` callback (a SubjectAccessReview in the
webhook, a dict in tests) about each and returns one line per missing permission. Before that,
the object is validated with the same models and messages as ``kubetune validate``, so that the
API server refuses what the operator would refuse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from kubetune.api import errors
from kubetune.api.v1alpha1.base import SecretKeyRef
from kubetune.api.v1alpha1.common import ModelSource
from kubetune.api.v1alpha1.finetunejob import FineTuneJob
from kubetune.api.v1alpha1.modeldeployment import DEFAULT_TGI_IMAGE, DEFAULT_VLLM_IMAGE, ModelDeployment

# verb, resource (plural, core group), name ("" for a collection) -> allowed
Allowed = Callable[[str, str, str], bool]


@dataclasses.dataclass(frozen=True)
class Reference:
    """One thing an object makes the operator use on its author's behalf."""

    field: str  # spec path as written in YAML, e.g. spec.dataset.secretRef
    verb: str  # get | create
    resource: str  # secrets | configmaps | persistentvolumeclaims | pods
    name: str = ""  # "" for create pods

    def denial(self, user: str, namespace: str) -> str:
        target = f"{self.resource}/{self.name}" if self.name else self.resource
        if self.resource == "pods":
            why = (
                "a custom image runs with the operator's pod rights; use the default image or get create pods"
            )
        else:
            why = f"reference only {self.resource} you can read yourself"
        return f"{self.field}: {user} may not {self.verb} {target} in namespace {namespace}; {why}"


def _uri_reference(field: str, uri: str | None) -> Reference | None:
    """``pvc://claim/path`` -> get persistentvolumeclaims/claim; ``configmap://name/key`` ->
    get configmaps/name; other schemes name nothing in the cluster."""
    if not uri:
        return None
    for scheme, resource in (("pvc://", "persistentvolumeclaims"), ("configmap://", "configmaps")):
        if uri.startswith(scheme):
            name = uri[len(scheme) :].split("/", 1)[0]
            return Reference(field, "get", resource, name) if name else None
    return None


def _secret(field: str, ref: SecretKeyRef | None) -> Reference | None:
    return Reference(field, "get", "secrets", ref.name) if ref is not None else None


def _model_source(prefix: str, source: ModelSource) -> list[Reference | None]:
    return [_uri_reference(f"{prefix}.uri", source.uri), _secret(f"{prefix}.secretRef", source.secret_ref)]


def references(obj: FineTuneJob | ModelDeployment, trainer_image: str) -> list[Reference]:
    """Every Secret, ConfigMap and claim ``obj`` names, and ``create pods`` for a custom image."""
    found: list[Reference | None]
    if isinstance(obj, FineTuneJob):
        spec = obj.spec
        found = [
            *_model_source("spec.baseModel", spec.base_model),
            _uri_reference("spec.dataset.uri", spec.dataset.uri),
            _uri_reference("spec.dataset.validationUri", spec.dataset.validation_uri),
            _secret("spec.dataset.secretRef", spec.dataset.secret_ref),
            _secret("spec.output.secretRef", spec.output.secret_ref),
        ]
        claim = spec.checkpoint_storage.claim_name
        if claim:
            found.append(
                Reference("spec.checkpointStorage.claimName", "get", "persistentvolumeclaims", claim)
            )
        if spec.image and spec.image != trainer_image:
            found.append(Reference("spec.image", "create", "pods"))
    else:
        found = [*_model_source("spec.baseModel", obj.spec.base_model)]
        if obj.spec.runtime.image not in (None, DEFAULT_TGI_IMAGE, DEFAULT_VLLM_IMAGE):
            found.append(Reference("spec.runtime.image", "create", "pods"))
    return [r for r in found if r is not None]


def problems(raw: Mapping[str, Any]) -> list[str]:
    """What ``kubetune validate`` would print for ``raw`` (status ignored: it is the operator's)."""
    body = {k: v for k, v in raw.items() if k != "status"}
    _, found = errors.validate_manifest(body)
    return [str(p) for p in found]


def denials(
    raw: Mapping[str, Any],
    *,
    user: str,
    allowed: Allowed,
    trainer_image: str,
    old: Mapping[str, Any] | None = None,
) -> list[str]:
    """Why ``user`` may not apply ``raw`` (empty: admit). ``old`` is the stored object on UPDATE.

    An UPDATE that leaves ``spec`` as it was (labels, annotations, finalizers: what the operator
    itself patches) names nothing new and is admitted unchecked: even an object stored before the
    webhook existed, which the models now refuse, must let its finalizer go. Otherwise invalid
    objects are refused with the validation messages, then every reference is checked.
    """
    if old is not None and old.get("spec") == raw.get("spec"):
        return []
    invalid = problems(raw)
    if invalid:
        return invalid
    kind = raw.get("kind")
    model = FineTuneJob if kind == "FineTuneJob" else ModelDeployment if kind == "ModelDeployment" else None
    if model is None:
        return []
    obj = model.model_validate({k: v for k, v in raw.items() if k != "status"})
    namespace = str((raw.get("metadata") or {}).get("namespace") or "")
    out: list[str] = []
    checked: dict[tuple[str, str, str], bool] = {}
    for ref in references(obj, trainer_image):
        key = (ref.verb, ref.resource, ref.name)
        if key not in checked:
            checked[key] = allowed(*key)
        if not checked[key]:
            out.append(ref.denial(user, namespace))
    return out
