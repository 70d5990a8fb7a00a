"""``result.json``: what one trainer run produced, for the operator and for people.

The trainer writes it to the output directory at the end of every run (also a failed
preflight, a gate not met, a dry run) and prints it as its last log event
(:func:`kubetune.api.contract.events.result`), where the operator reads it: the pushed digest,
the metrics and gate, the lineage an Adapter pins, the checkpoints. camelCase on the wire like
the API; ``preflight``, ``progress``, ``checkpoints`` and ``metrics`` reuse the API's status
models, so the operator copies them to ``status`` as they are. Another image that runs a
FineTuneJob (``spec.image``) must write the same document: one the model does not accept is
not a result. Pure pydantic; no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubetune.api.v1alpha1.common import MetricComparison
from kubetune.api.v1alpha1.finetunejob import CheckpointRef, PreflightSummary, Progress

FILENAME = "result.json"
Outcome = Literal[
    "Succeeded",  # trained, evaluated, exported; the gate passed (or none was set)
    "GateNotMet",  # trained and exported, but not to be registered
    "PreflightPassed",  # the preflight subcommand: checks passed, nothing trained
    "DryRunComplete",  # spec.dryRun / --dry-run: stopped after a passing preflight
    "PreflightFailed",
    "Failed",  # a user problem after the preflight (or an internal error, exit code 3)
    "Terminated",  # stopped by a signal after writing a checkpoint
]


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class GateResult(_Wire):
    passed: bool = Field(description="Whether the tuned model may be registered.")
    message: str = Field(description="Why, in one line.")
    metric: str | None = Field(default=None, description="The gate's metric, when a gate is set.")


class Artifacts(_Wire):
    dir: str = Field(description="Output directory of the run.")
    adapter: str | None = Field(default=None, description="peft adapter (safetensors + adapter_config.json).")
    model: str | None = Field(default=None, description="Whole model (full fine-tuning).")
    merged: str | None = Field(default=None, description="Base model with the adapter merged in.")
    int8: str | None = Field(default=None, description="int8 weight-only export (loads on CPU).")
    exports: list[ModelExport] = Field(
        default_factory=list, description="Whole-model exports (merged, quantized), each pushed on its own."
    )
    model_card: str | None = Field(default=None, description="model-card.json")
    model_card_markdown: str | None = Field(default=None, description="MODEL_CARD.md")
    registry_kind: Literal["adapter", "merged"] = Field(
        default="adapter", description="What to register: the adapter, or the whole model for full."
    )

    @property
    def primary(self) -> str | None:
        """The directory to register: the adapter, or the whole model."""
        return self.adapter or self.model


class Pushed(_Wire):
    ref: str = Field(description="Digest-pinned reference of the pushed artifact (repo@sha256:...).")
    tag: str = Field(description="The tag it was pushed under.")


ExportKind = Literal["merged", "quantized"]
ExportFormat = Literal["safetensors", "compressed-tensors", "gguf"]


class Calibration(_Wire):
    samples: int = Field(description="Calibration samples used (from the job's own training data).")
    sha256: str = Field(description="sha256 of the calibration samples' token ids, in order.")


class ModelExport(_Wire):
    """One whole-model export of a run: the merged model, or a quantized form of it.

    Written by the trainer (``trainer/export.py``), pushed as its own OCI artifact with this
    lineage (``trainer/publish.py``), registered for ModelDeployments to serve. ``quality``
    compares the export (``tuned``) with the unquantized tuned model (``base``) on the held-out
    set; a failed quality gate fails this export only (``passed`` false, ``message`` says why),
    never the run.
    """

    name: str = Field(description="Export name, unique in the run: merged, w4a16, w8a8, fp8, awq, q4_k_m...")
    kind: ExportKind
    format: ExportFormat = Field(description="On-disk format; decides which runtime flags load it.")
    dir: str = Field(description="Directory (or, for gguf, the file) the export was written to.")
    scheme: str | None = Field(
        default=None, description="Quantization scheme, e.g. W4A16, W8A8, FP8_DYNAMIC, Q4_K_M."
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Quantizer settings as used (algorithm, group size, ignore list...).",
    )
    calibration: Calibration | None = Field(default=None, description="For data-driven schemes.")
    quality: list[MetricComparison] = Field(
        default_factory=list, description="base: the unquantized tuned model; tuned: this export."
    )
    passed: bool = Field(default=True, description="False when its quality gate or its making failed.")
    message: str = Field(default="", description="Why it failed, in one line.")
    pushed: Pushed | None = Field(default=None, description="Set when pushed (cluster mode).")


class Training(_Wire):
    steps: int = 0
    total_steps: int = 0
    final_loss: float | None = None
    tokens_per_second: float | None = Field(default=None, description="Effective (non-padding) tokens/s.")
    train_seconds: float = Field(default=0.0, description="Training time over every attempt.")
    resumed_from_step: int | None = None
    device: str = "cpu"
    gpu_hours: float = 0.0
    cost: float = 0.0
    currency: str = "USD"


class RunResult(_Wire):
    """The content of ``result.json``."""

    api_version: str = "kubetune.io/v1alpha1"
    kind: Literal["TrainerResult"] = "TrainerResult"
    job: str
    outcome: Outcome
    exit_code: int
    message: str = ""
    preflight: PreflightSummary | None = None
    progress: Progress | None = None
    training: Training | None = None
    checkpoints: list[CheckpointRef] = Field(default_factory=list)
    metrics: list[MetricComparison] = Field(default_factory=list)
    gate: GateResult | None = None
    artifacts: Artifacts | None = None
    pushed: Pushed | None = Field(default=None, description="Set when the trainer pushed (cluster mode).")
    lineage: dict[str, Any] = Field(default_factory=dict)
    samples: list[dict[str, str]] = Field(default_factory=list, description="A few held-out generations.")
    start_time: str | None = None
    completion_time: str | None = None

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / FILENAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2), encoding="utf-8"
        )
        tmp.replace(path)
        return path


def read(out_dir: Path) -> RunResult:
    return RunResult.model_validate_json((out_dir / FILENAME).read_text(encoding="utf-8"))


def dataset_sha256(result: RunResult) -> str | None:
    """The digest of the training data the run recorded in its lineage (an Adapter pins it)."""
    dataset = result.lineage.get("dataset")
    value = dataset.get("sha256") if isinstance(dataset, dict) else None
    return value if isinstance(value, str) and value else None


def preference(result: RunResult) -> dict[str, Any] | None:
    """The preference objective a run trained with (loss, beta), when its data was preference."""
    value = result.lineage.get("preference")
    return value if isinstance(value, dict) else None


def base_revision(result: RunResult) -> str | None:
    """The base model revision the run resolved (``hf://org/name`` without ``@rev`` pins one)."""
    base = result.lineage.get("baseModel")
    value = base.get("revision") if isinstance(base, dict) else None
    return value if isinstance(value, str) and value else None
