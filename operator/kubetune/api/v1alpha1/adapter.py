"""Adapter: one immutable, digest-pinned entry of the adapter registry, with its lineage.

Created by the FineTuneJob operator when a job succeeds and its gate passes; read by the
ModelDeployment controller. The spec never changes after creation (CEL enforces it); the
status tracks the promotion state. Pure pydantic.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from kubetune.api.v1alpha1.base import (
    Condition,
    KindInfo,
    KubeModel,
    PrinterColumn,
    Resource,
    cel,
    validations,
)
from kubetune.api.v1alpha1.common import MetricComparison, ModelSource

PromotionState = Literal["candidate", "canary", "stable", "retired"]
DIGEST_REF_PATTERN = r"^(oci://[^\s@]+@sha256:[a-f0-9]{64}|/[^\s@]*@sha256:[a-f0-9]{64})$"


class ConditionType:
    """Condition types of an Adapter (``Ready``: the kstatus convention Flux, kpt and cli-utils read)."""

    READY = "Ready"
    AVAILABLE = "Available"


class Reason:
    """CamelCase reasons for Adapter conditions and events."""

    REGISTERED = "Registered"
    CANARY_STARTED = "CanaryStarted"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    RETIRED = "Retired"


class DatasetLineage(KubeModel):
    """The data an adapter was trained on."""

    uri: str = Field(description="Dataset location as given in the FineTuneJob.")
    sha256: str = Field(pattern=r"^[a-f0-9]{64}$", description="SHA-256 of the training file's bytes.")


class SourceJob(KubeModel):
    """The FineTuneJob that produced the adapter."""

    name: str = Field(description="FineTuneJob name.")
    namespace: str | None = Field(default=None, description="FineTuneJob namespace; empty in local mode.")
    uid: str | None = Field(default=None, description="FineTuneJob UID, to tell reused names apart.")


class Scorecard(KubeModel):
    """Evaluation of the adapter against its base model."""

    primary_metric: str = Field(description="Metric shown in kubectl get (the gate's, else the first).")
    primary_value: float = Field(description="Tuned value of the primary metric.")
    gate_passed: bool = Field(
        description="Whether the registration gate passed (always true for registered adapters)."
    )
    metrics: list[MetricComparison] = Field(default_factory=list, description="Every metric, base vs tuned.")


class HumanReview(KubeModel):
    """A blind human review of the adapter's held-out answers against the base model's
    (``kubetune review import``); the Adapter's spec is immutable, so it lives in status."""

    model_config = ConfigDict(strict=False)

    export_id: str = Field(
        description="Id of the review export the ratings came from (kubetune review export)."
    )
    wins: int = Field(ge=0, description="Judgments preferring the tuned answer.")
    losses: int = Field(ge=0, description="Judgments preferring the base answer.")
    ties: int = Field(ge=0, description="Judgments rating both answers the same.")
    items: int = Field(ge=0, description="Prompts in the export (some may be unrated).")
    win_rate: float = Field(
        ge=0, le=1, description="Tuned over base, ties counted as half a win: (wins + ties/2) / judgments."
    )
    low: float = Field(ge=0, le=1, description="Lower bound of the interval of winRate.")
    high: float = Field(ge=0, le=1, description="Upper bound of the interval of winRate.")
    confidence: float = Field(default=0.95, description="Confidence level of the interval, e.g. 0.95.")
    method: Literal["wilson"] = Field(
        default="wilson",
        description="Interval method: wilson (Wilson score interval; conservative with ties).",
    )
    reviewers: list[str] = Field(default_factory=list, description="Reviewer names the ratings files gave.")
    imported_at: str | None = Field(default=None, description="When the ratings were imported (RFC 3339).")


class AdapterSpec(KubeModel):
    """Lineage and location of an adapter; immutable."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self == oldSelf", "Adapter spec is immutable; register a new Adapter instead"),
        )
    )

    ref: str = Field(
        pattern=DIGEST_REF_PATTERN,
        description="Digest-pinned OCI reference, e.g. oci://registry.example.com/team/bot@sha256:...",
    )
    base_model: ModelSource = Field(description="The base model the adapter applies to.")
    method: str = Field(description="Training method (lora, dora, ...).")
    method_config: dict[str, Any] = Field(
        default_factory=dict, description="Method settings as trained (e.g. r, alpha, targetModules)."
    )
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="Hyperparameters as trained.")
    dataset: DatasetLineage = Field(description="Training data lineage.")
    trainer_image: str | None = Field(default=None, description="Image that ran the training.")
    seed: int = Field(description="Random seed of the run.")
    scorecard: Scorecard = Field(description="Evaluation against the base model.")
    source_job: SourceJob = Field(description="The FineTuneJob that produced it.")
    kubetune_version: str | None = Field(default=None, description="kubetune version that trained it.")


class AdapterStatus(KubeModel):
    """Promotion state of an adapter."""

    model_config = ConfigDict(strict=False)

    state: PromotionState = Field(default="candidate", description="candidate, canary, stable or retired.")
    deployments: list[str] = Field(default_factory=list, description="ModelDeployments that serve it.")
    conditions: list[Condition] = Field(default_factory=list, description="Latest observations.")
    observed_generation: int | None = Field(default=None, description="Generation the status reflects.")
    human_review: HumanReview | None = Field(
        default=None,
        description="Latest blind human review of samples (kubetune review import); unset if none.",
    )


class Adapter(Resource):
    """A registered, evaluated adapter, pinned by digest."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="Adapter",
        plural="adapters",
        singular="adapter",
        short_names=("adp",),
        description="Adapter is an immutable, digest-pinned fine-tuning result with its lineage and scorecard.",
        printer_columns=(
            PrinterColumn("Base", ".spec.baseModel.uri"),
            PrinterColumn("Method", ".spec.method"),
            PrinterColumn("Score", ".spec.scorecard.primaryValue", type="number"),
            PrinterColumn("State", ".status.state"),
            PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="kstatus Ready: the goal is reached (trained and registered, or serving the desired revision).",
            ),
            PrinterColumn("Metric", ".spec.scorecard.primaryMetric", priority=1),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
    )

    kind: Literal["Adapter"] = "Adapter"
    spec: AdapterSpec
    status: AdapterStatus | None = None
