"""vLLM: its OpenAI-compatible server, with adapters as served models.

The pod runs ``python3 -m vllm.entrypoints.openai.api_server`` (the same module in every
``vllm/vllm-openai`` image, whatever its entrypoint) with ``--model``, ``--served-model-name``
set to the ModelDeployment's name, and each adapter as ``--lora-modules NAME=/adapters/NAME``
from the same pull init containers TGI uses; a client selects an adapter with
``"model": NAME``, and an unknown name gets a 404 (TGI would answer with the base model).

vLLM must be told the largest LoRA rank it will meet (``--max-lora-rank``), which only the
pulled adapters know: an init container (``kubetune lora-config``) reads their
``adapter_config.json`` and writes it into a vLLM ``--config`` file, so the flag always
matches what is served. Its metrics are ``vllm:*``; see :func:`builtin_queries`.
"""

from __future__ import annotations

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.controllers.modeldeployment import analysis
from kubetune.controllers.modeldeployment.analysis import Query
from kubetune.controllers.modeldeployment.engines.base import Manifest, Served, health_probes

MODULE = "vllm.entrypoints.openai.api_server"
LORA_CONFIG = "/models/vllm-lora.yaml"


class VLLM:
    name = "vllm"
    container = "vllm"

    def command(self, mdep: ModelDeployment) -> list[str] | None:
        return ["python3", "-m", MODULE]

    def args(self, mdep: ModelDeployment, served: Served) -> list[str]:
        rt = mdep.spec.runtime
        name = mdep.metadata.name or "model"
        args = ["--model", served.model, *(["--revision", served.revision] if served.revision else [])]
        args += ["--served-model-name", name, "--host", "0.0.0.0", "--port", str(rt.port)]
        if served.quantization:
            args += ["--quantization", served.quantization]
        if rt.max_model_len is not None:
            args += ["--max-model-len", str(rt.max_model_len)]
        if rt.max_num_seqs is not None:
            args += ["--max-num-seqs", str(rt.max_num_seqs)]
        if served.adapters:
            args += ["--enable-lora", "--max-loras", str(len(served.adapters))]
            args += ["--lora-modules", *(f"{n}={path}" for n, path in served.adapters)]
            # --max-lora-rank, read from the pulled adapters by the lora-config init container
            args += ["--config", LORA_CONFIG]
        return args + rt.args

    def env(self, mdep: ModelDeployment, served: Served) -> list[Manifest]:
        # vLLM reports usage to its authors by default; a cluster's serving pods should not
        return [{"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "DO_NOT_TRACK", "value": "1"}]

    def init_containers(self, mdep: ModelDeployment, served: Served) -> list[Manifest]:
        if not served.adapters:
            return []
        dirs = ",".join(path for _, path in served.adapters)
        return [
            {
                "name": "lora-config",
                "command": ["kubetune", "lora-config", "--adapters", dirs, "--out", LORA_CONFIG],
                "env": [],
                "volumeMounts": [
                    {"name": "models", "mountPath": "/models"},
                    {"name": "adapters", "mountPath": "/adapters", "readOnly": True},
                ],
            }
        ]

    def probes(self, startup_failures: int) -> Manifest:
        """vLLM binds its port only once the model is loaded, so ``/health`` answers the startup
        question (every 5 s, ``verification.timeout`` in all) and the readiness one (200 while
        the engine is alive, out of rotation after 15 s of failures). Not ``/v1/models``: under
        ``--api-key`` it answers 401. Liveness is a TCP connect, as for TGI."""
        return health_probes(startup_failures)

    def verifier_args(self, mdep: ModelDeployment) -> list[str]:
        return ["--api", "openai", "--base-model", mdep.metadata.name or "model"]

    def builtin_queries(self, namespace: str, window: str) -> list[Query]:
        """PromQL for the built-in checks over vLLM's series, as vLLM 0.32 exports them.

        Seen on the real server (docs/serving.md): every ``vllm:*`` series exists from start-up
        at 0, labelled ``engine`` and ``model_name`` (the base model's served name, also for
        requests to an adapter), counters end in ``_total``; a request that vLLM refuses (404 for
        an unknown model, 400 for a bad parameter) never reaches them. HTTP outcomes come from
        the server's ``http_requests_total{handler, method, status="2xx|4xx|5xx"}``, a series
        born on the first request with that outcome. So:

        - errorRate: 5xx answers / all answers of the generation routes (4xx are the client's
          fault, as TGI's validation errors are); its sample count is all those answers.
        - p95Latency: ``vllm:e2e_request_latency_seconds``; timePerToken: the per-request mean
          ``vllm:request_time_per_output_token_seconds`` (TGI's is a per-request mean too);
          timeToFirstToken: ``vllm:time_to_first_token_seconds``; queueTime:
          ``vllm:request_queue_time_seconds``. Their sample count is the finished requests.

        Counts use :func:`analysis.window_increase`, which also covers series born in the window.
        """
        s = analysis.selector(namespace, analysis.REV)

        def grown(metric: str, extra: str = "") -> str:
            return analysis.window_increase(f"{metric}{{{s}{extra}}}", window)

        routes = ',handler=~"/v1/completions|/v1/chat/completions|/v1/responses"'
        answers = f"sum({grown('http_requests_total', routes)})"
        failures = "sum(" + grown("http_requests_total", routes + ',status="5xx"') + ")"
        finished = f"sum({grown('vllm:e2e_request_latency_seconds_count')})"

        def mean(histogram: str) -> str:
            return f"sum({grown(histogram + '_sum')}) / sum({grown(histogram + '_count')})"

        def buckets(histogram: str) -> str:
            return f"sum by (le) ({grown(histogram + '_bucket')})"

        e2e = "vllm:e2e_request_latency_seconds"
        per_token = "vllm:request_time_per_output_token_seconds"
        first = "vllm:time_to_first_token_seconds"
        queue = "vllm:request_queue_time_seconds"
        return [
            Query("errorRate", f"({failures} or ({answers} * 0)) / {answers}", answers),
            Query("p95Latency", f"histogram_quantile(0.95, {buckets(e2e)})", finished, buckets(e2e)),
            Query("timePerToken", mean(per_token), finished, buckets(per_token)),
            Query("timeToFirstToken", mean(first), finished, buckets(first)),
            Query("queueTime", mean(queue), finished, buckets(queue)),
        ]


ENGINE = VLLM()
