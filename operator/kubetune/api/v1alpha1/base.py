"""Shared building blocks of the v1alpha1 API: the base model, conditions, quantities, durations.

Every kubetune model derives from :class:`KubeModel`: snake_case in Python, camelCase on the
wire, unknown fields rejected (so typos are caught), strict types (``"2"`` is not an integer,
as the API server would say). CRD-only metadata (CEL rules, printer columns) is attached here
through ``json_schema_extra`` so that :mod:`kubetune.crdgen` can emit it; nothing here talks to
Kubernetes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class KubeModel(BaseModel):
    """Base of every API model: camelCase aliases, strict types, unknown fields forbidden."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        validate_assignment=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict sent to Kubernetes: camelCase keys, unset optionals omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str, *, reason: str | None = None, field_path: str | None = None) -> JsonDict:
    """One ``x-kubernetes-validations`` entry; the message is what ``kubectl apply`` prints."""
    out: JsonDict = {"rule": rule, "message": message}
    if reason:
        out["reason"] = reason
    if field_path:
        out["fieldPath"] = field_path
    return out


def validations(*rules: JsonDict) -> JsonDict:
    """``json_schema_extra`` carrying CEL rules for a field or a model."""
    entries: list[JsonValue] = [*rules]
    return {"x-kubernetes-validations": entries}


# --- Quantities ------------------------------------------------------------------------------

_QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not _QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity; write e.g. 4, '500m', '16Gi' or '1.5'")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}),
]
"""A Kubernetes resource quantity (``4``, ``"500m"``, ``"16Gi"``): int-or-string in the CRD."""


# --- Durations -------------------------------------------------------------------------------

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
"""A Go-style duration such as ``30s``, ``5m`` or ``1h30m``."""


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``"1m30s"`` -> 90.0). Raises ValueError on bad input."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration; write e.g. '30s', '5m' or '1h30m'")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


# --- Object metadata and references -------------------------------------------------------------


class ObjectMeta(KubeModel):
    """The part of metav1.ObjectMeta that kubetune reads; the rest passes through untouched."""

    model_config = ConfigDict(extra="allow", strict=False)

    name: str | None = Field(default=None, description="Name of the object, unique in its namespace.")
    namespace: str | None = Field(default=None, description="Namespace of the object.")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None


class SecretKeyRef(KubeModel):
    """A key in a Secret in the same namespace."""

    name: str = Field(description="Name of the Secret, in the same namespace as the object.")
    key: str = Field(
        default="token",
        description="Key inside the Secret whose value is used. Default: token.",
    )


class Toleration(KubeModel):
    """A core/v1 Toleration, copied to the pods as written."""

    key: str | None = Field(default=None, description="Taint key the toleration applies to.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the default)."
    )
    value: str | None = Field(default=None, description="Taint value matched with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, description="For NoExecute: how long the pod stays bound after the taint appears."
    )


# --- Conditions ------------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KubeModel):
    """A metav1.Condition: one observation of one aspect of the object's state."""

    model_config = ConfigDict(strict=False)

    type: str = Field(description="CamelCase condition type, e.g. Ready, PreflightPassed.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation this condition was computed from."
    )
    last_transition_time: str = Field(
        description="RFC 3339 time at which status last changed (not when the message changed)."
    )
    reason: str = Field(description="CamelCase reason code for the last transition.")
    message: str = Field(default="", description="Human-readable detail; may be empty.")


def rfc3339(now: datetime) -> str:
    """Kubernetes' timestamp format, second precision, always UTC with a ``Z``."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Return ``conditions`` with ``type`` set; ``lastTransitionTime`` moves only when status does."""
    current = get_condition(conditions, type)
    since = current.last_transition_time if current is not None and current.status == status else rfc3339(now)
    cond = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )
    if current is None:
        return [*conditions, cond]
    return [cond if c.type == type else c for c in conditions]


def get_condition(conditions: list[Condition], type: str) -> Condition | None:
    """The condition of ``type``, or None."""
    return next((c for c in conditions if c.type == type), None)


def is_true(conditions: list[Condition], type: str) -> bool:
    """Whether the condition of ``type`` exists and is ``True``."""
    cond = get_condition(conditions, type)
    return cond is not None and cond.status == "True"


# --- CRD metadata ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry for ``kubectl get``."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    """How a kind appears in Kubernetes: names, columns, categories."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...]
    description: str
    categories: tuple[str, ...] = ("kubetune",)
    extra: dict[str, Any] = field(default_factory=dict)
    # CEL rules at the root of the schema, where ``self.metadata.name`` can be read
    validations: tuple[JsonDict, ...] = ()
    # The status the API server fills in before the operator writes one (CRD default). A
    # kind the operator always reconciles sets observedGeneration 0 here, so kstatus (Flux)
    # reads a brand-new object as InProgress ("generation 1 not observed"), not Current.
    status_default: JsonDict | None = None


class Resource(KubeModel):
    """A top-level kind: apiVersion, kind, metadata, spec and status."""

    info: ClassVar[KindInfo]

    api_version: str = Field(default=API_VERSION, description="kubetune.io/v1alpha1")
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
