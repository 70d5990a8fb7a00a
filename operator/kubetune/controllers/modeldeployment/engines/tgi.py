"""text-generation-inference: the default engine, and ``kubetune serve`` in tests.

TGI takes ``--model-id``, loads adapters from ``LORA_ADAPTERS=name=/adapters/name,...`` and
selects one per request by ``adapter_id`` (or the OpenAI ``model``). It answers with the base
model for an adapter it failed to load, which the verifier sidecar catches through
``/generate``. Its metrics (``tgi_*``) appear on first use; see :func:`builtin_queries`.
"""

from __future__ import annotations

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.api.v1alpha1.modeldeployment import DEFAULT_TGI_MAX_CONCURRENT
from kubetune.controllers.modeldeployment import analysis
from kubetune.controllers.modeldeployment.analysis import Query
from kubetune.controllers.modeldeployment.engines.base import Manifest, Served, health_probes


class TGI:
    name = "tgi"
    container = "tgi"

    def command(self, mdep: ModelDeployment) -> list[str] | None:
        return None

    def args(self, mdep: ModelDeployment, served: Served) -> list[str]:
        rt = mdep.spec.runtime
        args = ["--model-id", served.model, *(["--revision", served.revision] if served.revision else [])]
        args += ["--port", str(rt.port), "--hostname", "0.0.0.0"]
        args += ["--max-concurrent-requests", str(rt.max_concurrent_requests or DEFAULT_TGI_MAX_CONCURRENT)]
        if served.quantization:
            args += ["--quantize", served.quantization]
        if rt.max_input_tokens is not None:
            args += ["--max-input-tokens", str(rt.max_input_tokens)]
        if rt.max_total_tokens is not None:
            args += ["--max-total-tokens", str(rt.max_total_tokens)]
        return args + rt.args

    def env(self, mdep: ModelDeployment, served: Served) -> list[Manifest]:
        if not served.adapters:
            return []
        return [{"name": "LORA_ADAPTERS", "value": ",".join(f"{n}={path}" for n, path in served.adapters)}]

    def init_containers(self, mdep: ModelDeployment, served: Served) -> list[Manifest]:
        return []

    def probes(self, startup_failures: int) -> Manifest:
        """startup: has the model loaded? ``/health`` answers once the shards are up, which on a
        real GPU can take minutes; every 5 s, ``verification.timeout`` in all. readiness: can it
        serve now? ``/health`` every 5 s, out of rotation after 15 s of failures. liveness: a TCP
        connect, not ``/health`` (a busy server slow to answer must not be killed and reload its
        model) and not an authenticated route (``/info`` under ``--api-key`` answers 401)."""
        return health_probes(startup_failures)

    def verifier_args(self, mdep: ModelDeployment) -> list[str]:
        return []

    def builtin_queries(self, namespace: str, window: str) -> list[Query]:
        """PromQL for the built-in checks over TGI's series; see :meth:`Query.for_revision`.

        Counts come from :func:`analysis.window_increase`, so series that TGI creates on first
        use count from their first sample. The error rate is 0 (not empty) when the revision
        served requests and no failure series exists; with no request at all it has no value,
        and the sample count is empty too, which the verdict reads as Inconclusive. TGI has no
        time-to-first-token histogram, so that check is vLLM's alone.
        """
        s = analysis.selector(namespace, analysis.REV)

        def grown(metric: str, extra: str = "") -> str:
            return analysis.window_increase(f"{metric}{{{s}{extra}}}", window)

        count = f"sum({grown('tgi_request_count')})"
        # validation errors are the client's fault, not the revision's
        failures = "sum(" + grown("tgi_request_failure", ',err!="validation"') + ")"

        def mean(histogram: str) -> str:
            return f"sum({grown(histogram + '_sum')}) / sum({grown(histogram + '_count')})"

        def buckets(histogram: str) -> str:
            return f"sum by (le) ({grown(histogram + '_bucket')})"

        duration = "tgi_request_duration"
        per_token = "tgi_request_mean_time_per_token_duration"
        queue = "tgi_request_queue_duration"
        return [
            Query("errorRate", f"({failures} or ({count} * 0)) / {count}", count),
            Query("p95Latency", f"histogram_quantile(0.95, {buckets(duration)})", count, buckets(duration)),
            Query("timePerToken", mean(per_token), count, buckets(per_token)),
            Query("queueTime", mean(queue), count, buckets(queue)),
        ]


ENGINE = TGI()
