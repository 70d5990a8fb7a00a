"""Helpers of the ModelDeployment integration tests: adapters made on the spot, bodies, reads.

:func:`make_adapter_dir` writes a LoRA adapter for the tiny model with peft itself: ``working``
adapters get large random weights, so greedy answers differ from the base model's; a
``no-op`` adapter keeps peft's default initialisation (B = 0), so it answers exactly like the
base model: what TGI does silently when an adapter did not really load, and what the verifier
sidecar must catch. :func:`register_adapter` pushes one to a real registry and records it as an
``Adapter`` resource, as a successful FineTuneJob would.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from kubetune.registry import store, transfer
from kubetune.testing.kube import Kube

MDEP = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/modeldeployments"
ADAPTERS = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/adapters"


def make_adapter_dir(model: Path, out: Path, *, working: bool, seed: int = 7) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    if working:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * 2.0)
    peft_model.save_pretrained(out)
    return out


def register_adapter(kube: Kube, namespace: str, name: str, directory: Path, registry: str) -> str:
    """Push ``directory`` to ``registry`` (``oci://host:port``) and create Adapter ``name``; its ref."""
    ref = transfer.push_directory(
        directory,
        f"{registry}/adapters/{name}:v1",
        {"baseModel": {"uri": "pvc://data/model"}, "method": "lora"},
        options=store.Options(insecure=True),
    )
    create_adapter(kube, namespace, name, ref)
    return ref


def create_adapter(kube: Kube, namespace: str, name: str, ref: str) -> None:
    """The Adapter ``name`` pinned to ``ref``, as a FineTuneJob would register it."""
    kube.create(
        ADAPTERS.format(ns=namespace),
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "Adapter",
            "metadata": {"name": name},
            "spec": {
                "ref": ref,
                "baseModel": {"uri": "pvc://data/model"},
                "method": "lora",
                "dataset": {"uri": "pvc://data/train.jsonl", "sha256": "0" * 64},
                "seed": 42,
                "scorecard": {"primaryMetric": "loss", "primaryValue": 1.0, "gatePassed": True},
                "sourceJob": {"name": name, "namespace": namespace},
            },
        },
    )


def model_deployment(name: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment of the tiny model on CPU, one pod per revision, quick probes."""
    body: dict[str, Any] = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "replicas": 1,
            "resources": {"gpus": 0},
            "runtime": {"args": ["--num-threads", "1"], "maxTotalTokens": 64},
            "verification": {"prompt": "the support team", "maxNewTokens": 8, "timeout": "90s"},
            "rollout": {"steps": [{"setWeight": 50}, {"setWeight": 100}]},
        },
    }
    body["spec"].update(spec)
    return body


def get_mdep(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(MDEP.format(ns=namespace) + f"/{name}")


def status_of(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return get_mdep(kube, namespace, name).get("status") or {}


def deployments(kube: Kube, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    found = kube.list(
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        labelSelector=f"kubetune.io/modeldeployment={name}",
    )
    return {d["metadata"]["labels"]["kubetune.io/revision"]: d for d in found}


def adapter_state(kube: Kube, namespace: str, name: str) -> str | None:
    obj = kube.get(ADAPTERS.format(ns=namespace) + f"/{name}")
    return (obj.get("status") or {}).get("state")


def generate(pod_ip: str, prompt: str, adapter: str | None = None, port: int = 8080) -> dict[str, Any]:
    params: dict[str, Any] = {"max_new_tokens": 8, "do_sample": False}
    if adapter:
        params["adapter_id"] = adapter
    req = urllib.request.Request(
        f"http://{pod_ip}:{port}/generate",
        data=json.dumps({"inputs": prompt, "parameters": params}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def dump(kube: Kube, namespace: str, name: str) -> str:
    status = status_of(kube, namespace, name)
    pods = kube.list(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"kubetune.io/modeldeployment={name}"
    )
    lines = [json.dumps(status, indent=1)[:3000]]
    for p in pods:
        st = p.get("status") or {}
        lines.append(
            f"pod {p['metadata']['name']} {st.get('phase')} {json.dumps(st.get('containerStatuses'))[:800]}"
        )
    return "\n".join(lines)
