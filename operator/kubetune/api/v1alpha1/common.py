"""Spec blocks shared by more than one kind: where a model comes from, and the metric names.

Kept apart from the kinds so that FineTuneJob, Adapter and ModelDeployment describe a base
model the same way. Pure pydantic; no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kubetune.api.v1alpha1.base import KubeModel, SecretKeyRef

MODEL_URI_PATTERN = r"^(hf://[^\s@]+(@[^\s@]+)?|oci://[^\s]+|pvc://[^\s/]+/[^\s]*|s3://[^\s]+|file://[^\s]+|/[^\s]*|\.{1,2}/[^\s]*)$"
DATASET_URI_PATTERN = r"^(hf://[^\s]+|oci://[^\s]+|pvc://[^\s/]+/[^\s]*|s3://[^\s]+|file://[^\s]+|https?://[^\s]+|configmap://[^\s]+|/[^\s]*|\.{1,2}/[^\s]*|[^\s:]+)$"

Metric = Literal[
    "loss",
    "perplexity",
    "rougeL",
    "bleu",
    "exactMatch",
    "accuracy",
    "f1",
    "preferenceAccuracy",
    "rewardMargin",
]
GENERATION_METRICS: frozenset[str] = frozenset({"rougeL", "bleu", "exactMatch"})
CLASSIFICATION_METRICS: frozenset[str] = frozenset({"accuracy", "f1"})
PREFERENCE_METRICS: tuple[str, ...] = ("preferenceAccuracy", "rewardMargin")
LOWER_IS_BETTER: frozenset[str] = frozenset({"loss", "perplexity"})


class ModelSource(KubeModel):
    """Where a base model's weights and tokenizer come from."""

    uri: str = Field(
        min_length=1,
        pattern=MODEL_URI_PATTERN,
        description=(
            "Location of the base model. One of hf://org/name[@revision] (Hugging Face Hub), "
            "oci://registry/repo[:tag|@sha256:...] (an OCI artifact holding the model's files; the "
            "digest is recorded in the lineage), pvc://claim/path (a directory on a "
            "PersistentVolumeClaim), or a local path (local mode only). s3:// is accepted but not "
            "read yet: copy the model to a claim. Example: hf://meta-llama/Llama-3.2-1B@main."
        ),
    )
    revision: str | None = Field(
        default=None,
        description=(
            "Git revision (branch, tag or commit) for hf:// models; overrides an @revision in "
            "the uri. Pin a commit for reproducible runs."
        ),
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret holding an access token for the model's source (e.g. HF_TOKEN).",
    )
    trust_remote_code: bool = Field(
        default=False,
        description="Allow custom modelling code shipped with the model. Default: false.",
    )


class MetricComparison(KubeModel):
    """One evaluation metric for the base model and the tuned model."""

    name: str = Field(description="Metric name, e.g. loss, rougeL, accuracy.")
    base: float | None = Field(default=None, description="Value for the base model, when measured.")
    tuned: float = Field(description="Value for the tuned model.")
    delta: float | None = Field(
        default=None, description="Improvement of tuned over base; positive is better for every metric."
    )
