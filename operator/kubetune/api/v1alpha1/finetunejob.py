"""FineTuneJob: train an adapter (or a full model) from a base model and a dataset.

Declares the spec blocks of DESIGN §2 with defaults and ``kubectl explain`` text, the status
written by the operator, condition types and CamelCase reasons, and the cross-field rules
(as pydantic validators with messages naming the field path, and as CEL where the API server
must enforce them). Pure pydantic; imports no Kubernetes or ML library.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from kubetune.api.v1alpha1 import names
from kubetune.api.v1alpha1.base import (
    Condition,
    KindInfo,
    KubeModel,
    PrinterColumn,
    Quantity,
    Resource,
    SecretKeyRef,
    Toleration,
    cel,
    validations,
)
from kubetune.api.v1alpha1.common import (
    CLASSIFICATION_METRICS,
    DATASET_URI_PATTERN,
    GENERATION_METRICS,
    PREFERENCE_METRICS,
    Metric,
    MetricComparison,
    ModelSource,
)
from kubetune.api.v1alpha1.preference import PREFERENCE_METHODS, PreferenceSpec

MethodType = Literal["lora", "qlora", "dora", "full", "prompt-tuning", "prefix-tuning", "ia3"]
DatasetFormat = Literal["auto", "instruction", "chat", "completion", "text", "classification", "preference"]
Phase = Literal[
    "Pending",
    "Validating",
    "Queued",
    "Training",
    "Evaluating",
    "Exporting",
    "Succeeded",
    "Failed",
    "Suspended",
]


class ConditionType:
    """Condition types of a FineTuneJob.

    ``Ready``, ``Reconciling`` and ``Stalled`` follow the kstatus conventions that Flux, kpt and
    cli-utils read (``Stalled`` = failed for good, until the spec changes); they summarise the
    others. A training run that reports no step for ``spec.stallTimeoutSeconds`` is
    ``TrainingStalled``, which may still recover.
    """

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    PREFLIGHT_PASSED = "PreflightPassed"
    TRAINING = "Training"
    GATE_PASSED = "GatePassed"
    SUSPENDED = "Suspended"
    # Kueue (spec.queueName): True while the training Job waits in its LocalQueue for quota
    QUEUED = "Queued"
    SCHEDULED = "Scheduled"
    TRAINING_STALLED = "TrainingStalled"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Reason:
    """CamelCase reasons for FineTuneJob conditions and events."""

    CREATED = "Created"
    PREFLIGHT_RUNNING = "PreflightRunning"
    PREFLIGHT_PASSED = "PreflightPassed"
    PREFLIGHT_FAILED = "PreflightFailed"
    BUDGET_EXCEEDED = "BudgetExceeded"
    INSUFFICIENT_GPU = "InsufficientGPU"
    SCHEDULED = "Scheduled"
    TRAINING_STARTED = "TrainingStarted"
    TRAINING_FAILED = "TrainingFailed"
    RETRYING = "Retrying"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    STALLED = "Stalled"
    PROGRESSING = "Progressing"
    EVALUATING = "Evaluating"
    GATE_PASSED = "GatePassed"
    GATE_NOT_MET = "GateNotMet"
    EXPORTING = "Exporting"
    ADAPTER_REGISTERED = "AdapterRegistered"
    ADAPTER_NAME_TAKEN = "AdapterNameTaken"
    NO_REGISTRY = "NoRegistry"
    NOT_REGISTERED = "NotRegistered"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    SUCCEEDED = "Succeeded"
    DRY_RUN_COMPLETE = "DryRunComplete"
    INVALID_SPEC = "InvalidSpec"  # also: the API server refused a child built from the spec (422)
    FOREIGN_CHILD = "ForeignChild"  # a child's name is taken by an object this job does not own
    # The API server refuses the pods of a child Job (controllers/refusals.py): a ResourceQuota
    # (QuotaExceeded: a wait when others use it up, the end when its hard limit is too small), a
    # LimitRange or Pod Security (PodsRefused: the end), anything else (PodsNotCreated: a wait).
    QUOTA_EXCEEDED = "QuotaExceeded"
    PODS_REFUSED = "PodsRefused"
    PODS_NOT_CREATED = "PodsNotCreated"
    PODS_CREATED = "PodsCreated"
    # Kueue (spec.queueName): the Workload waits for quota, was admitted, was evicted
    # (preempted, reclaimed, deactivated) and waits again; Kueue's own reason is in the message.
    QUEUED = "Queued"
    ADMITTED = "Admitted"
    EVICTED = "Evicted"


# What the API server says when an update changes a field a run is defined by; a GitOps tool
# shows it beside its diff.
IMMUTABLE = (
    "{field} is immutable (a FineTuneJob is one training run): to train with another value, give "
    "the FineTuneJob a new metadata.name; deleting and re-creating it (Argo CD sync options "
    "Force=true,Replace=true; Flux spec.force: true) works only once the Adapter it registered, "
    "if any, is deleted too"
)


# --- spec blocks -----------------------------------------------------------------------------


class FieldMapping(KubeModel):
    """Names of the dataset columns, when they differ from the format's defaults."""

    instruction: str | None = Field(
        default=None, description="Column with the instruction. Default: instruction."
    )
    input: str | None = Field(
        default=None, description="Column with the optional input/context. Default: input."
    )
    output: str | None = Field(
        default=None, description="Column with the expected response. Default: output."
    )
    messages: str | None = Field(
        default=None, description="Column with OpenAI-style messages (chat). Default: messages."
    )
    prompt: str | None = Field(
        default=None,
        description="Column with the prompt (completion, preference; a string or, for preference, "
        "a list of chat messages). Default: prompt.",
    )
    completion: str | None = Field(
        default=None, description="Column with the completion (completion). Default: completion."
    )
    text: str | None = Field(
        default=None, description="Column with raw text (text, classification). Default: text."
    )
    label: str | None = Field(
        default=None, description="Column with the class label (classification). Default: label."
    )
    chosen: str | None = Field(
        default=None, description="Column with the preferred answer (preference). Default: chosen."
    )
    rejected: str | None = Field(
        default=None, description="Column with the dispreferred answer (preference). Default: rejected."
    )


PLAIN_HTTP_TOKEN_MESSAGE = (
    "spec.dataset.secretRef: the token would be sent over plain http://; "
    "use an https:// URL (or drop secretRef for a public file)"
)


# On the dataset field of FineTuneJobSpec, beside its immutability rule (a field's rules replace
# those of the model it holds).
PLAIN_HTTP_TOKEN_CEL = cel(
    "!has(self.secretRef) || (!self.uri.startsWith('http://') && "
    "(!has(self.validationUri) || !self.validationUri.startsWith('http://')))",
    PLAIN_HTTP_TOKEN_MESSAGE,
    field_path=".secretRef",
)


class DatasetSpec(KubeModel):
    """The training data and how to read it."""

    uri: str = Field(
        min_length=1,
        pattern=DATASET_URI_PATTERN,
        description=(
            "Location of a JSONL or JSON-array file: pvc://claim/path, configmap://name/key (small "
            "files, mounted by the operator), https://... (secretRef's token is sent as a bearer "
            "token; a presigned object-store URL works), hf://datasets/org/name[@revision][/file], "
            "oci://registry/repo[:tag|@sha256:...][#file] (an OCI artifact, e.g. pushed with oras), "
            "or a local path in local mode. s3:// is accepted but not read yet: use a presigned "
            "https:// URL. Example: pvc://datasets/support/train.jsonl."
        ),
    )
    format: DatasetFormat = Field(
        default="auto",
        description=(
            "Row format: instruction (instruction/input/output), chat (OpenAI messages), "
            "completion (prompt/completion), text, classification (text/label), preference "
            "(prompt/chosen/rejected; trained with spec.preference), or auto to detect from the "
            "first rows. Default: auto."
        ),
    )
    validation_split: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description=(
            "Fraction of rows held out for evaluation, from 0 (none) up to but excluding 1. "
            "Ignored when validationUri is set. Default: 0.1."
        ),
    )
    validation_uri: str | None = Field(
        default=None,
        pattern=DATASET_URI_PATTERN,
        description="Separate held-out file, same format as uri. Default: split from uri.",
    )
    fields: FieldMapping = Field(
        default_factory=FieldMapping, description="Column names, when they differ from the defaults."
    )
    prompt_template: str | None = Field(
        default=None,
        description=(
            "Python format string rendering an instruction row into the prompt, with "
            "{instruction} and {input}. Default: an Alpaca-style template; chat data uses the "
            "tokenizer's chat template."
        ),
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the dataset source's token: a bearer token for https:// "
        "(never sent over plain http://, nor to another host on a redirect), a Hugging Face token "
        "for hf://datasets.",
    )

    @model_validator(mode="after")
    def _no_token_over_plain_http(self) -> Self:
        uris = (self.uri, self.validation_uri or "")
        if self.secret_ref is not None and any(u.startswith("http://") for u in uris):
            raise ValueError(PLAIN_HTTP_TOKEN_MESSAGE)
        return self


class LoraConfig(KubeModel):
    """Low-rank adapter settings, used by lora, dora and qlora."""

    r: int = Field(default=16, ge=1, le=1024, description="Rank of the update matrices. Default: 16.")
    alpha: int = Field(
        default=32, ge=1, description="Scaling numerator; the update is scaled by alpha/r. Default: 32."
    )
    dropout: float = Field(
        default=0.05, ge=0.0, lt=1.0, description="Dropout on the adapter input. Default: 0.05."
    )
    target_modules: list[str] = Field(
        default_factory=lambda: ["all-linear"],
        min_length=1,
        description=(
            "Module names (or suffixes) to adapt, e.g. [q_proj, v_proj]; all-linear adapts every "
            "linear layer except the output head. Default: [all-linear]."
        ),
    )
    bias: Literal["none", "all", "lora_only"] = Field(
        default="none", description="Which biases to train. Default: none."
    )


class QLoraConfig(KubeModel):
    """4-bit quantization of the frozen base model for qlora (needs a CUDA GPU)."""

    quant_type: Literal["nf4", "fp4"] = Field(default="nf4", description="4-bit data type. Default: nf4.")
    double_quant: bool = Field(
        default=True, description="Quantize the quantization constants too. Default: true."
    )
    compute_dtype: Literal["bfloat16", "float16"] = Field(
        default="bfloat16", description="Dtype of the matmuls. Default: bfloat16."
    )


class FullConfig(KubeModel):
    """Full fine-tuning: every weight is trained."""

    freeze_embeddings: bool = Field(
        default=False, description="Keep the input embeddings frozen. Default: false."
    )


class PromptTuningConfig(KubeModel):
    """Soft prompt tuning: learns virtual token embeddings prepended to the input."""

    num_virtual_tokens: int = Field(
        default=20, ge=1, le=512, description="Number of virtual tokens. Default: 20."
    )
    init_text: str | None = Field(
        default=None,
        description="Initialise the virtual tokens from this text's embeddings. Default: random.",
    )


class PrefixTuningConfig(KubeModel):
    """Prefix tuning: learns key/value prefixes for every attention layer."""

    num_virtual_tokens: int = Field(
        default=20, ge=1, le=512, description="Prefix length in tokens. Default: 20."
    )
    projection: bool = Field(
        default=False, description="Reparameterise the prefix through an MLP. Default: false."
    )


class IA3Config(KubeModel):
    """(IA)^3: learns scaling vectors for keys, values and feed-forward activations."""

    target_modules: list[str] | None = Field(
        default=None, description="Modules to scale. Default: the architecture's attention and MLP modules."
    )
    feedforward_modules: list[str] | None = Field(
        default=None, description="Which of targetModules are feed-forward layers. Default: per architecture."
    )


_METHOD_BLOCKS: dict[str, tuple[str, ...]] = {
    "lora": ("lora", "dora", "qlora"),
    "qlora": ("qlora",),
    "full": ("full",),
    "prompt_tuning": ("prompt-tuning",),
    "prefix_tuning": ("prefix-tuning",),
    "ia3": ("ia3",),
}
_ALIAS = {"prompt_tuning": "promptTuning", "prefix_tuning": "prefixTuning"}


def _method_cel() -> list[JsonDict]:
    rules: list[JsonDict] = []
    for block, types in _METHOD_BLOCKS.items():
        alias = _ALIAS.get(block, block)
        allowed = " || ".join(f"self.type == '{t}'" for t in types)
        rules.append(
            cel(
                f"!has(self.{alias}) || {allowed}",
                f"spec.method.{alias} is set but spec.method.type is not {' or '.join(types)}",
                field_path=f".{alias}",
            )
        )
    return rules


class MethodSpec(KubeModel):
    """The training method and its settings."""

    model_config = ConfigDict(json_schema_extra=validations(*_method_cel()))

    type: MethodType = Field(
        default="lora",
        description=(
            "lora, qlora (4-bit base, CUDA only), dora (weight-decomposed LoRA), full, "
            "prompt-tuning, prefix-tuning or ia3. Default: lora."
        ),
    )
    lora: LoraConfig | None = Field(default=None, description="LoRA settings for lora, dora and qlora.")
    qlora: QLoraConfig | None = Field(default=None, description="Quantization settings for qlora.")
    full: FullConfig | None = Field(default=None, description="Settings for full fine-tuning.")
    prompt_tuning: PromptTuningConfig | None = Field(default=None, description="Settings for prompt-tuning.")
    prefix_tuning: PrefixTuningConfig | None = Field(default=None, description="Settings for prefix-tuning.")
    ia3: IA3Config | None = Field(default=None, description="Settings for ia3.")
    train_on_inputs: bool = Field(
        default=False,
        description=(
            "Also compute the loss on prompt tokens. Default: false (loss only on the response "
            "of instruction, completion and chat rows)."
        ),
    )

    @model_validator(mode="after")
    def _blocks_match_type(self) -> Self:
        for block, types in _METHOD_BLOCKS.items():
            if getattr(self, block) is not None and self.type not in types:
                alias = _ALIAS.get(block, block)
                raise ValueError(
                    f"spec.method.{alias} is set but spec.method.type is {self.type!r}; remove "
                    f"spec.method.{alias} or set spec.method.type to {' or '.join(types)}"
                )
        return self

    def lora_settings(self) -> LoraConfig:
        """The LoRA block, or its defaults."""
        return self.lora or LoraConfig()


class Hyperparameters(KubeModel):
    """Optimisation settings; every one has a default suited to adapter training."""

    epochs: float = Field(
        default=3.0, gt=0, le=1000, description="Passes over the training data. Default: 3."
    )
    max_steps: int | None = Field(
        default=None,
        ge=1,
        description="Stop after this many optimizer steps; overrides epochs. Default: unset.",
    )
    learning_rate: float = Field(default=2e-4, gt=0, le=1.0, description="Peak learning rate. Default: 2e-4.")
    batch_size: int = Field(
        default=8, ge=1, le=4096, description="Sequences per device per step. Default: 8."
    )
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=1024, description="Micro-batches summed per optimizer step. Default: 1."
    )
    max_seq_length: int = Field(
        default=1024,
        ge=8,
        le=1048576,
        description="Tokens per sequence; longer rows are truncated. Default: 1024.",
    )
    packing: bool = Field(
        default=False,
        description="Pack several short rows into one sequence to avoid padding. Default: false.",
    )
    warmup_ratio: float = Field(
        default=0.03, ge=0, le=1, description="Share of steps spent warming up. Default: 0.03."
    )
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        default="cosine", description="Learning-rate schedule after warm-up. Default: cosine."
    )
    weight_decay: float = Field(default=0.0, ge=0, le=1, description="AdamW weight decay. Default: 0.")
    max_grad_norm: float = Field(default=1.0, gt=0, description="Gradient clipping norm. Default: 1.0.")
    seed: int = Field(default=42, ge=0, description="Seed for data order, init and dropout. Default: 42.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", description="Training precision; auto picks bf16 on GPUs that support it, else fp32."
    )
    gradient_checkpointing: bool = Field(
        default=False, description="Trade compute for memory by recomputing activations. Default: false."
    )


class ResourcesSpec(KubeModel):
    """Compute for the training pods."""

    gpus_per_node: int = Field(
        default=1,
        ge=0,
        le=64,
        description="nvidia.com/gpu requested by each training pod (0 = CPU). Default: 1.",
    )
    num_nodes: int = Field(
        default=1,
        ge=1,
        le=names.MAX_TRAINING_NODES,
        description="Training pods; above 1 runs torchrun across an Indexed Job. Default: 1.",
    )
    gpu_product: str | None = Field(
        default=None,
        description="Required GPU model, matched against the nvidia.com/gpu.product node label, e.g. NVIDIA-A100-SXM4-80GB.",
    )
    cpu: Quantity | None = Field(
        default=None, description="CPU request and limit per pod, e.g. 8 or '7500m'."
    )
    memory: Quantity | None = Field(
        default=None, description="Memory request and limit per pod, e.g. '64Gi'."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the pods must match."
    )
    tolerations: list[Toleration] = Field(default_factory=list, description="Tolerations copied to the pods.")
    priority_class_name: str | None = Field(default=None, description="PriorityClass of the training pods.")


DEFAULT_METRICS: tuple[Metric, ...] = ("loss", "perplexity")


class Gate(KubeModel):
    """The bar the tuned model must clear before it is registered as an Adapter."""

    metric: Metric = Field(
        description="Metric the gate reads, e.g. rougeL or loss; must be in evaluation.metrics."
    )
    min_improvement: float = Field(
        default=0.0,
        description=(
            "Least improvement of tuned over base, in the metric's units and in its better "
            "direction (lower loss, higher rougeL). 0 means 'no worse than base'. Default: 0."
        ),
    )
    min_value: float | None = Field(
        default=None,
        description="Absolute floor (or ceiling, for loss and perplexity) the tuned value must reach.",
    )


class EvaluationSpec(KubeModel):
    """How the tuned model is scored against the base model on the held-out split."""

    metrics: list[Metric] = Field(
        default_factory=lambda: list(DEFAULT_METRICS),
        min_length=1,
        description=(
            "loss, perplexity, rougeL, bleu, exactMatch (generation formats), accuracy, f1 "
            "(classification), preferenceAccuracy, rewardMargin (preference; always reported for "
            "preference data, list them to gate on them). Default: [loss, perplexity]."
        ),
    )
    compare_to_base: bool = Field(
        default=True, description="Also evaluate the untouched base model for comparison. Default: true."
    )
    max_samples: int = Field(
        default=200, ge=1, description="Held-out rows decoded for generation metrics. Default: 200."
    )
    max_new_tokens: int = Field(default=128, ge=1, description="Tokens generated per sample. Default: 128.")
    gate: Gate | None = Field(
        default=None, description="Registration gate; unset registers every successful run."
    )

    @model_validator(mode="after")
    def _gate_metric_is_measured(self) -> Self:
        if self.gate is not None:
            if self.gate.metric not in self.metrics:
                raise ValueError(
                    f"spec.evaluation.gate.metric is {self.gate.metric!r} but spec.evaluation.metrics "
                    f"is {self.metrics}; add {self.gate.metric!r} to spec.evaluation.metrics"
                )
            if self.gate.min_improvement and not self.compare_to_base:
                raise ValueError(
                    "spec.evaluation.gate.minImprovement needs the base model's score but "
                    "spec.evaluation.compareToBase is false; set compareToBase: true or drop minImprovement"
                )
        return self


PLAIN_HTTP_REGISTRY_MESSAGE = (
    "spec.output.insecure: the registry credentials of spec.output.secretRef would be sent over "
    "plain HTTP; use a TLS registry (insecure: false) or a registry that needs no credentials"
)


class OutputSpec(KubeModel):
    """Where the result goes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.repository) || self.repository.startsWith('oci://')",
                "spec.output.repository must be a remote registry, oci://HOST/PATH: a local "
                "directory (fine for kubetune run) would be inside the training pod and vanish with it",
                field_path=".repository",
            ),
            cel(
                "!has(self.secretRef) || !has(self.insecure) || !self.insecure",
                PLAIN_HTTP_REGISTRY_MESSAGE,
                field_path=".insecure",
            ),
        )
    )

    repository: str | None = Field(
        default=None,
        pattern=r"^(oci://[a-zA-Z0-9.\-]+(:[0-9]+)?/[a-z0-9._/\-]+|/[^\s]*|\.{1,2}/[^\s]*)$",
        description=(
            "OCI repository for the adapter, e.g. oci://registry.example.com/team/support-bot. "
            "On a cluster it must be oci://; kubetune run also takes a local OCI layout directory. "
            "Default: <operator's registry prefix>/<namespace>/<job name> (local mode: "
            "./.kubetune/registry)."
        ),
    )
    tag: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$",
        description=(
            "Tag for the artifact. Default: <job name>-<generation>-<first 8 characters of the "
            "job's uid>, so a re-created job never moves an earlier run's tag. A fixed tag moves "
            "to each new run; the digest the Adapter pins is always recorded."
        ),
    )
    merge: bool = Field(
        default=False, description="Also export the base model with the adapter merged in. Default: false."
    )
    quantize: Literal["none", "int8", "gptq", "awq", "nf4"] = Field(
        default="none",
        description="Also export a quantized model: int8 (weight-only, runs on CPU); gptq, awq, nf4 need a GPU. Default: none.",
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret with registry credentials (a .dockerconfigjson key, or username/password keys).",
    )
    insecure: bool = Field(
        default=False,
        description="Talk plain HTTP to the registry; not with secretRef (credentials never travel "
        "in clear). Default: false.",
    )

    @model_validator(mode="after")
    def _no_credentials_over_plain_http(self) -> Self:
        if self.insecure and self.secret_ref is not None:
            raise ValueError(PLAIN_HTTP_REGISTRY_MESSAGE)
        return self


class BudgetSpec(KubeModel):
    """Limits on what a run may spend; preflight refuses a job whose estimate exceeds them."""

    max_gpu_hours: float | None = Field(default=None, gt=0, description="Most GPU-hours the job may use.")
    max_cost: float | None = Field(
        default=None, gt=0, description="Most money the job may cost, in currency."
    )
    currency: str = Field(
        default="USD", min_length=3, max_length=3, description="ISO 4217 code. Default: USD."
    )
    gpu_hourly_price: float | None = Field(
        default=None,
        gt=0,
        description="Price of one GPU-hour; default: the list price of spec.resources.gpuProduct in "
        "kubetune's table (an A100 80GB's for an unknown product), used by the preflight's estimate "
        "and the live status.cost alike.",
    )


class CheckpointStorage(KubeModel):
    """Where checkpoints live while the job runs."""

    claim_name: str | None = Field(
        default=None,
        description="PersistentVolumeClaim for checkpoints, so they survive pod restarts on other nodes; "
        "each job writes under a directory named after it. With numNodes > 1 every pod mounts it "
        "(rank 0 alone writes), so it must be ReadWriteMany. Default: emptyDir.",
    )


_PREFERENCE_DATA = (
    "(has(self.preference) || (has(self.dataset.format) && self.dataset.format == 'preference'))"
)
PREFERENCE_FORMAT_MESSAGE = (
    "spec.preference is set but spec.dataset.format is {fmt}; set spec.dataset.format: preference "
    "(or auto) for prompt/chosen/rejected rows, or remove spec.preference"
)
PREFERENCE_METHOD_MESSAGE = (
    "spec.method.type {method} cannot be trained on preference data (its reference model would "
    "differ from the base model); use " + ", ".join(PREFERENCE_METHODS)
)
PREFERENCE_PACKING_MESSAGE = (
    "spec.hyperparameters.packing does not apply to preference data (each chosen and rejected "
    "answer is scored as its own sequence); set packing: false"
)


def _preference_cel() -> list[JsonDict]:
    methods = ", ".join(f"'{m}'" for m in PREFERENCE_METHODS)
    return [
        cel(
            "!has(self.preference) || !has(self.dataset.format) || self.dataset.format in ['auto', 'preference']",
            PREFERENCE_FORMAT_MESSAGE.format(fmt="neither preference nor auto"),
            field_path=".preference",
        ),
        cel(
            f"!{_PREFERENCE_DATA} || !has(self.method) || !has(self.method.type) || self.method.type in [{methods}]",
            PREFERENCE_METHOD_MESSAGE.format(method="prompt-tuning or prefix-tuning"),
            field_path=".method.type",
        ),
        cel(
            f"!{_PREFERENCE_DATA} || !has(self.hyperparameters) || !has(self.hyperparameters.packing) "
            "|| !self.hyperparameters.packing",
            PREFERENCE_PACKING_MESSAGE,
            field_path=".hyperparameters.packing",
        ),
    ]


class FineTuneJobSpec(KubeModel):
    """Desired state of a FineTuneJob."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.method) || !has(self.method.type) || self.method.type != 'qlora' || "
                "!has(self.resources) || !has(self.resources.gpusPerNode) || self.resources.gpusPerNode >= 1",
                "spec.method.type qlora needs a CUDA GPU; set spec.resources.gpusPerNode >= 1 or use lora",
            ),
            *_preference_cel(),
        )
    )

    base_model: Annotated[
        ModelSource,
        Field(
            description="The model to fine-tune. Immutable once created.",
            json_schema_extra=validations(cel("self == oldSelf", IMMUTABLE.format(field="spec.baseModel"))),
        ),
    ]
    dataset: Annotated[
        DatasetSpec,
        Field(
            description="The training data. Immutable once created.",
            json_schema_extra=validations(
                cel("self == oldSelf", IMMUTABLE.format(field="spec.dataset")),
                PLAIN_HTTP_TOKEN_CEL,
            ),
        ),
    ]
    method: MethodSpec = Field(default_factory=MethodSpec, description="Training method. Default: lora.")
    hyperparameters: Hyperparameters = Field(
        default_factory=Hyperparameters, description="Optimisation settings."
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Compute for the training pods."
    )
    evaluation: EvaluationSpec = Field(
        default_factory=EvaluationSpec, description="Scoring against the base model."
    )
    output: OutputSpec = Field(default_factory=OutputSpec, description="Where the adapter is pushed.")
    image: str | None = Field(
        default=None, description="Trainer image. Default: the operator's trainer image."
    )
    suspend: bool = Field(
        default=False,
        description="Checkpoint and free the GPUs; set back to false to resume. Default: false.",
    )
    queue_name: Annotated[
        str | None,
        Field(
            default=None,
            max_length=253,
            pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
            description="Kueue LocalQueue (in this namespace) that admits the training Job: it is "
            "created suspended with the label kueue.x-k8s.io/queue-name and starts when Kueue admits "
            "all its pods together; Kueue may later evict it (preemption), and it resumes from its "
            "checkpoint when admitted again. Default: the operator's default queue (chart value "
            "kueue.defaultQueueName), else none: the job starts at once, without Kueue. Immutable.",
            json_schema_extra=validations(cel("self == oldSelf", IMMUTABLE.format(field="spec.queueName"))),
        ),
    ]
    dry_run: bool = Field(default=False, description="Stop after the preflight report. Default: false.")
    backoff_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Retries of a failed training pod, each resuming from a checkpoint. Default: 3.",
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Fail the job when training has run this many seconds, counted from the start of "
        "the training Job (the preflight does not count; as for a Kubernetes Job, suspending and "
        "resuming restarts the count). The training pods get SIGTERM and write a checkpoint; the job "
        "ends Failed with reason DeadlineExceeded. Default: none.",
    )
    checkpoint_every_steps: int = Field(
        default=100,
        ge=1,
        description="Write a checkpoint every N optimizer steps (and on SIGTERM). Default: 100.",
    )
    checkpoint_storage: CheckpointStorage = Field(
        default_factory=CheckpointStorage, description="Where checkpoints are kept."
    )
    stall_timeout_seconds: int = Field(
        default=900,
        ge=30,
        description="Set condition TrainingStalled when no step is reported for this long. Default: 900.",
    )
    budget: BudgetSpec | None = Field(default=None, description="Spending limits enforced at preflight.")
    preference: PreferenceSpec | None = Field(
        default=None,
        description=(
            "Preference tuning (DPO, IPO, ORPO) of a preference dataset (prompt/chosen/rejected). "
            "Default when the data is preference: sigmoid (DPO) with beta 0.1."
        ),
    )

    @model_validator(mode="after")
    def _cross_field(self) -> Self:
        fmt = self.dataset.format
        metrics = set(self.evaluation.metrics)
        if fmt == "classification" and metrics & GENERATION_METRICS:
            bad = sorted(metrics & GENERATION_METRICS)
            raise ValueError(
                f"spec.evaluation.metrics has {bad} but spec.dataset.format is classification; "
                "use accuracy and f1 for classification"
            )
        if fmt not in ("classification", "auto") and metrics & CLASSIFICATION_METRICS:
            bad = sorted(metrics & CLASSIFICATION_METRICS)
            raise ValueError(
                f"spec.evaluation.metrics has {bad} but spec.dataset.format is {fmt}; accuracy "
                "and f1 need spec.dataset.format: classification"
            )
        self._preference_rules()
        if self.method.type == "qlora" and self.resources.gpus_per_node == 0:
            raise ValueError(
                "spec.method.type qlora needs a CUDA GPU but spec.resources.gpusPerNode is 0; "
                "set gpusPerNode >= 1 or use method lora"
            )
        if self.resources.num_nodes > 1 and self.method.type in ("prompt-tuning", "prefix-tuning"):
            raise ValueError(
                f"spec.resources.numNodes is {self.resources.num_nodes} but {self.method.type} trains "
                "a few thousand parameters; use numNodes: 1"
            )
        return self

    def _preference_rules(self) -> None:
        fmt = self.dataset.format
        metrics = set(self.evaluation.metrics)
        if self.preference is not None and fmt not in ("preference", "auto"):
            raise ValueError(PREFERENCE_FORMAT_MESSAGE.format(fmt=fmt))
        if fmt not in ("preference", "auto") and metrics & set(PREFERENCE_METRICS):
            bad = sorted(metrics & set(PREFERENCE_METRICS))
            raise ValueError(
                f"spec.evaluation.metrics has {bad} but spec.dataset.format is {fmt}; these metrics "
                "need spec.dataset.format: preference"
            )
        if fmt != "preference" and self.preference is None:
            return
        if fmt == "preference" and metrics & GENERATION_METRICS:
            bad = sorted(metrics & GENERATION_METRICS)
            raise ValueError(
                f"spec.evaluation.metrics has {bad} but spec.dataset.format is preference; use loss, "
                "perplexity, preferenceAccuracy and rewardMargin"
            )
        if self.method.type not in PREFERENCE_METHODS:
            raise ValueError(PREFERENCE_METHOD_MESSAGE.format(method=self.method.type))
        if self.hyperparameters.packing:
            raise ValueError(PREFERENCE_PACKING_MESSAGE)

    def preference_settings(self) -> PreferenceSpec:
        """The preference block, or its defaults."""
        return self.preference or PreferenceSpec()


# --- status ----------------------------------------------------------------------------------


class PreflightSummary(KubeModel):
    """What the preflight found, before any GPU was requested."""

    model_config = ConfigDict(strict=False)

    passed: bool = Field(description="Whether the preflight passed.")
    format: str | None = Field(default=None, description="Detected dataset format.")
    rows: int = Field(default=0, description="Rows read.")
    train_rows: int = Field(default=0, description="Rows used for training.")
    validation_rows: int = Field(default=0, description="Rows held out.")
    tokens: int = Field(default=0, description="Tokens in the training split after templating.")
    truncated_percent: float = Field(
        default=0.0, description="Share of rows longer than maxSeqLength, in percent."
    )
    trainable_token_share: float = Field(default=0.0, description="Share of tokens that carry loss (0..1).")
    duplicates: int = Field(default=0, description="Exact duplicate rows.")
    overlap: int = Field(default=0, description="Validation rows also present in training.")
    estimated_steps: int = Field(default=0, description="Optimizer steps the run will take.")
    estimated_gpu_hours: float = Field(default=0.0, description="Estimated GPU-hours.")
    estimated_cost: float = Field(default=0.0, description="Estimated cost in the budget's currency.")
    errors: list[str] = Field(
        default_factory=list, description="Problems that failed the preflight (first 20)."
    )


# Bound of status.progress.lossHistory: enough for a sparkline, small enough for every status patch.
LOSS_HISTORY_POINTS = 60


class Progress(KubeModel):
    """Live training progress reported by the trainer."""

    model_config = ConfigDict(strict=False)

    step: int = Field(default=0, description="Optimizer steps done.")
    total_steps: int = Field(default=0, description="Optimizer steps planned.")
    epoch: float = Field(default=0.0, description="Epochs done (fractional).")
    loss: float | None = Field(default=None, description="Latest training loss.")
    eval_loss: float | None = Field(default=None, description="Latest held-out loss.")
    learning_rate: float | None = Field(default=None, description="Current learning rate.")
    tokens_per_second: float | None = Field(
        default=None, description="Effective (non-padding) tokens per second."
    )
    eta_seconds: float | None = Field(default=None, description="Estimated seconds left.")
    summary: str | None = Field(default=None, description="step/total and percent, for kubectl get.")
    update_time: str | None = Field(default=None, description="When the trainer last reported.")
    loss_history: list[float] | None = Field(
        default=None,
        max_length=LOSS_HISTORY_POINTS,
        description=f"The last training losses reported (at most {LOSS_HISTORY_POINTS}, oldest first, "
        "4 significant digits; the last one is the loss of `step`), for a sparkline such as "
        "`kubetune status ftj NAME` draws. Steps whose report was not read leave no point.",
    )
    loss_history_step: int | None = Field(
        default=None,
        ge=0,
        description="The step of the last point in lossHistory (the training pod also reports "
        "`step` itself, so the operator remembers how far its history goes).",
    )


class CheckpointRef(KubeModel):
    """A complete checkpoint."""

    model_config = ConfigDict(strict=False)

    step: int = Field(description="Optimizer step of the checkpoint.")
    path: str = Field(description="Directory of the checkpoint inside the checkpoint volume.")
    time: str | None = Field(default=None, description="When it was completed.")


class AdapterRef(KubeModel):
    """The registered result."""

    model_config = ConfigDict(strict=False)

    name: str | None = Field(default=None, description="Name of the Adapter resource.")
    ref: str = Field(description="Digest-pinned OCI reference, oci://host/repo@sha256:...")


class CostSummary(KubeModel):
    """What the job has spent so far."""

    model_config = ConfigDict(strict=False)

    gpu_hours: float = Field(default=0.0, description="GPU-hours consumed.")
    amount: float = Field(default=0.0, description="Cost in currency.")
    currency: str = Field(default="USD", description="ISO 4217 code.")


class QueueStatus(KubeModel):
    """Where the training Job stands in Kueue (jobs with a queue name only)."""

    model_config = ConfigDict(strict=False)

    local_queue: str = Field(description="The LocalQueue the training Job was submitted to.")
    cluster_queue: str | None = Field(
        default=None, description="The ClusterQueue behind it, once Kueue has reserved quota there."
    )
    workload: str | None = Field(default=None, description="Kueue's Workload for the training Job.")
    admitted: bool = Field(default=False, description="Whether Kueue admits the training Job now.")
    reason: str | None = Field(
        default=None, description="Kueue's reason for the current state (e.g. Pending, Preempted)."
    )
    message: str | None = Field(
        default=None,
        description="Kueue's message, e.g. why it cannot admit the job (insufficient quota of a resource).",
    )
    evictions: int = Field(default=0, ge=0, description="How many times Kueue evicted the training Job.")


class FineTuneJobStatus(KubeModel):
    """Observed state of a FineTuneJob, written by the operator."""

    model_config = ConfigDict(strict=False)

    phase: Phase = Field(default="Pending", description="One-word summary; read conditions for detail.")
    conditions: list[Condition] = Field(default_factory=list, description="Latest observations.")
    observed_generation: int | None = Field(default=None, description="Generation the status reflects.")
    preflight: PreflightSummary | None = Field(default=None, description="Preflight report.")
    progress: Progress | None = Field(default=None, description="Live training progress.")
    checkpoints: list[CheckpointRef] = Field(
        default_factory=list,
        description="Complete checkpoints the trainer still keeps (the newest 3 by default), oldest first.",
    )
    metrics: list[MetricComparison] = Field(default_factory=list, description="Base vs tuned evaluation.")
    adapter: AdapterRef | None = Field(default=None, description="The registered Adapter.")
    queue: QueueStatus | None = Field(
        default=None, description="Kueue admission of the training Job (only with spec.queueName)."
    )
    cost: CostSummary | None = Field(default=None, description="Spend so far.")
    attempts: int = Field(default=0, description="Training pod attempts started.")
    start_time: str | None = Field(default=None, description="When training started.")
    completion_time: str | None = Field(default=None, description="When the job finished.")


class FineTuneJob(Resource):
    """A fine-tuning run: base model + dataset + method -> an evaluated adapter in a registry."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="FineTuneJob",
        plural="finetunejobs",
        singular="finetunejob",
        short_names=("ftj",),
        description="FineTuneJob trains an adapter from a base model and a dataset, evaluates it against the base model and registers it as an Adapter.",
        printer_columns=(
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="kstatus Ready: the goal is reached (trained and registered, or serving the desired revision).",
            ),
            PrinterColumn("Progress", ".status.progress.summary"),
            PrinterColumn("Base model", ".spec.baseModel.uri"),
            PrinterColumn("Method", ".spec.method.type"),
            PrinterColumn("Queue", ".status.queue.clusterQueue", priority=1),
            PrinterColumn("Adapter", ".status.adapter.name", priority=1),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
        status_default={"observedGeneration": 0},
        validations=names.cel_rules(names.FINETUNEJOB),
    )

    kind: Literal["FineTuneJob"] = "FineTuneJob"
    spec: FineTuneJobSpec
    status: FineTuneJobStatus | None = None
