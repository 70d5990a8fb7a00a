"""The engine seam: TGI renders exactly as before engines existed, vLLM renders its own server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.controllers.modeldeployment import builders, engines

GOLDEN = Path(__file__).parent / "golden"
DIGEST = "oci://registry.test/ml/bot@sha256:" + "a" * 64
DIGEST2 = "oci://registry.test/ml/helper@sha256:" + "b" * 64


def make(runtime: dict[str, Any] | None = None, **spec: Any) -> ModelDeployment:
    base: dict[str, Any] = {
        "baseModel": {"uri": "oci://registry.test/models/llama@sha256:" + "c" * 64},
        "adapters": [{"name": "bot", "adapter": "bot-v1"}],
        "runtime": runtime if runtime is not None else {},
    }
    base.update(spec)
    return ModelDeployment.model_validate(
        {
            "kind": "ModelDeployment",
            "metadata": {"name": "chat", "namespace": "ml", "uid": "u-1"},
            "spec": base,
        }
    )


def vllm(**runtime: Any) -> ModelDeployment:
    return make(
        {"engine": "vllm", **runtime},
        adapters=[{"name": "bot", "adapter": "bot-v1"}, {"name": "helper", "ref": DIGEST2}],
    )


def server(mdep: ModelDeployment) -> dict[str, Any]:
    pod = builders.deployment(mdep, "rev1", "stable", 1, {"bot": DIGEST})["spec"]["template"]["spec"]
    return pod["containers"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        # computed with the builders before spec.runtime.engine existed: an operator upgrade
        # must not give every TGI deployment a new revision (and a canary)
        ({"quantize": "bitsandbytes", "maxInputTokens": 1024, "maxTotalTokens": 2048}, "a17f73fb4f"),
        ({}, "e61f00768b"),
        ({"maxConcurrentRequests": 7, "image": "x/y:1"}, "c27d473062"),
        ({"engine": "tgi", "maxConcurrentRequests": 128}, "e61f00768b"),
    ],
)
def test_tgi_revisions_keep_the_hashes_they_had_before_engines(
    runtime: dict[str, Any], expected: str
) -> None:
    mdep = make(runtime).model_copy()
    mdep.metadata.name = "bot"
    assert builders.revision(mdep, {"bot": DIGEST}) == expected


def test_the_engine_is_part_of_the_revision() -> None:
    assert builders.revision(make({"engine": "vllm"}), {"bot": DIGEST}) != builders.revision(
        make(), {"bot": DIGEST}
    )


def test_vllm_runs_the_openai_server_module_with_every_pulled_adapter_as_a_lora_module() -> None:
    c = server(vllm(maxModelLen=256, maxNumSeqs=8, quantize="awq", args=["--dtype", "float32"]))
    assert c["name"] == "vllm"
    assert c["image"] == "vllm/vllm-openai:v0.32.0"
    assert c["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    args = c["args"]
    assert args[:2] == ["--model", "/models/base"]
    assert args[args.index("--served-model-name") + 1] == "chat"
    assert args[args.index("--port") + 1] == "8080"
    assert args[args.index("--quantization") + 1] == "awq"
    assert args[args.index("--max-model-len") + 1] == "256"
    assert args[args.index("--max-num-seqs") + 1] == "8"
    assert "--enable-lora" in args
    i = args.index("--lora-modules")
    assert args[i + 1 : i + 3] == ["bot=/adapters/bot", "helper=/adapters/helper"]
    assert args[args.index("--max-loras") + 1] == "2"
    assert args[args.index("--config") + 1] == "/models/vllm-lora.yaml"
    assert args[-2:] == ["--dtype", "float32"]  # the user's extra arguments last
    assert not any(a.startswith("--max-concurrent") or a == "--model-id" for a in args)
    assert {"name": "VLLM_NO_USAGE_STATS", "value": "1"} in c["env"]
    assert not any(e["name"] == "LORA_ADAPTERS" for e in c["env"])


def test_a_builder_quantization_value_overrides_the_spec_for_either_engine() -> None:
    for mdep, flag in ((vllm(), "--quantization"), (make(), "--quantize")):
        pod = builders.deployment(mdep, "r", "stable", 1, {"bot": DIGEST}, quantization="gptq")
        args = pod["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index(flag) + 1] == "gptq"


def test_vllm_reads_the_lora_rank_from_the_pulled_adapters_in_an_init_container_after_the_pulls() -> None:
    pod = builders.deployment(vllm(), "rev1", "stable", 1, {"bot": DIGEST})["spec"]["template"]["spec"]
    inits = pod["initContainers"]
    assert [i["name"] for i in inits] == [
        "pull-base-model",
        "pull-adapter-bot",
        "pull-adapter-helper",
        "lora-config",
    ]
    cfg = inits[-1]
    assert cfg["command"] == [
        "kubetune", "lora-config", "--adapters", "/adapters/bot,/adapters/helper", "--out", "/models/vllm-lora.yaml"
    ]  # fmt: skip
    assert cfg["image"] == inits[0]["image"]  # the kubetune image, like the pulls
    assert cfg["resources"] == inits[0]["resources"]
    assert cfg["securityContext"]["readOnlyRootFilesystem"] is True


def test_vllm_without_adapters_runs_without_lora() -> None:
    mdep = make({"engine": "vllm"}, adapters=[])
    pod = builders.deployment(mdep, "rev1", "stable", 1, {})["spec"]["template"]["spec"]
    assert [i["name"] for i in pod["initContainers"]] == ["pull-base-model"]
    assert "--enable-lora" not in pod["containers"][0]["args"]
    assert [c["name"] for c in pod["containers"]] == ["vllm"]


def test_vllm_probes_ask_its_health_endpoint_and_the_verifier_asks_through_the_openai_api() -> None:
    pod = builders.deployment(vllm(), "rev1", "stable", 1, {"bot": DIGEST})["spec"]["template"]["spec"]
    c, verifier = pod["containers"]
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["livenessProbe"]["tcpSocket"] == {"port": "http"}
    args = verifier["args"]
    assert args[args.index("--api") + 1] == "openai"
    assert args[args.index("--base-model") + 1] == "chat"
    assert args[args.index("--adapters") + 1] == "bot,helper"


def test_tgi_keeps_its_own_flags_and_no_vllm_ones() -> None:
    c = server(make({"maxTotalTokens": 64}))
    assert c["name"] == "tgi"
    assert "command" not in c
    assert c["args"][:2] == ["--model-id", "/models/base"]
    assert c["args"][c["args"].index("--max-concurrent-requests") + 1] == "128"
    assert {"name": "LORA_ADAPTERS", "value": "bot=/adapters/bot"} in c["env"]
    assert "--lora-modules" not in c["args"] and "--served-model-name" not in c["args"]


@pytest.mark.parametrize(
    ("runtime", "field"),
    [
        ({"engine": "vllm", "maxTotalTokens": 64}, "spec.runtime.maxTotalTokens is a TGI setting"),
        ({"engine": "vllm", "maxInputTokens": 8}, "spec.runtime.maxInputTokens is a TGI setting"),
        (
            {"engine": "vllm", "maxConcurrentRequests": 8},
            "spec.runtime.maxConcurrentRequests is a TGI setting",
        ),
        ({"maxModelLen": 256}, "spec.runtime.maxModelLen is a vLLM setting"),
        ({"engine": "tgi", "maxNumSeqs": 4}, "spec.runtime.maxNumSeqs is a vLLM setting"),
        ({"engine": "vllm", "quantize": "exl2"}, "spec.runtime.quantize exl2 is TGI-only"),
    ],
)
def test_a_field_of_the_other_engine_is_refused_naming_the_field(runtime: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        make(runtime)


def test_the_crd_refuses_the_other_engines_fields_too() -> None:
    crd = yaml.safe_load(
        (Path(__file__).parents[3] / "crds" / "modeldeployments.kubetune.io.yaml").read_text()
    )
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = schema["properties"]["spec"]["properties"]["runtime"]["x-kubernetes-validations"]
    messages = " ".join(r["message"] for r in rules)
    for field in ("maxInputTokens", "maxTotalTokens", "maxConcurrentRequests", "maxModelLen", "maxNumSeqs"):
        assert f"spec.runtime.{field} is a" in messages


def test_each_engine_queries_its_own_metrics() -> None:
    tgi = {q.name: q for q in engines.get("tgi").builtin_queries("ml", "5m")}
    vl = {q.name: q for q in engines.get("vllm").builtin_queries("ml", "5m")}
    assert set(tgi) == {"errorRate", "p95Latency", "timePerToken", "queueTime"}
    assert set(vl) == set(tgi) | {"timeToFirstToken"}
    assert all("vllm:" not in q.value for q in tgi.values())
    assert all("tgi_" not in q.value + q.samples for q in vl.values())
    assert "vllm:e2e_request_latency_seconds_bucket" in vl["p95Latency"].value
    assert 'status="5xx"' in vl["errorRate"].value
    with pytest.raises(ValueError, match=r"spec\.runtime\.engine 'sglang'"):
        engines.get("sglang")


def test_vllm_children_match_golden() -> None:
    mdep = vllm(maxModelLen=256, args=["--dtype", "float32"])
    docs = [
        builders.deployment(mdep, "rev1", "stable", 2, {"bot": DIGEST}),
        builders.pod_disruption_budget(mdep),
    ]
    text = yaml.safe_dump_all(docs, sort_keys=True)
    path = GOLDEN / "modeldeployment-vllm.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), (
        f"{path} differs; if intended, regenerate with UPDATE_GOLDEN=1 and review"
    )
