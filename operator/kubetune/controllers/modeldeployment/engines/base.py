"""The interface every inference engine implements, and the pieces engines share.

See :mod:`kubetune.controllers.modeldeployment.engines` for the role of engines. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kubetune.api.v1alpha1 import ModelDeployment
from kubetune.controllers.modeldeployment.analysis import Query

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Served:
    """What the shared builder hands an engine: where the base model and each adapter are."""

    model: str  # hub id, or a path inside the pod
    revision: str | None  # a hub revision, for hf:// models
    adapters: list[tuple[str, str]]  # (served name, directory in the pod)
    quantization: str | None


class Engine(Protocol):
    """One inference server; each method is a pure function of the spec."""

    name: str
    container: str  # the server container's name

    def command(self, mdep: ModelDeployment) -> list[str] | None:
        """The container command (None: the image's entrypoint)."""
        ...

    def args(self, mdep: ModelDeployment, served: Served) -> list[str]:
        """The server's arguments, the user's extra ``runtime.args`` last."""
        ...

    def env(self, mdep: ModelDeployment, served: Served) -> list[Manifest]:
        """Engine-specific environment (the shared builder adds HF_HOME, HOME and HF_TOKEN)."""
        ...

    def init_containers(self, mdep: ModelDeployment, served: Served) -> list[Manifest]:
        """Init containers after the pulls (image, resources and registry env set by the builder)."""
        ...

    def probes(self, startup_failures: int) -> Manifest:
        """startupProbe, readinessProbe and livenessProbe of the server container."""
        ...

    def verifier_args(self, mdep: ModelDeployment) -> list[str]:
        """Arguments telling ``kubetune verify-adapters`` how to ask this server."""
        ...

    def builtin_queries(self, namespace: str, window: str) -> list[Query]:
        """PromQL of the built-in canary checks over this engine's own metrics."""
        ...


def liveness() -> Manifest:
    """A TCP connect every 10 s, restarted after a minute of failures; see the engines' probes."""
    return {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6}


def health_probes(startup_failures: int) -> Manifest:
    """Startup and readiness on ``/health`` (every 5 s; startup allows ``startup_failures``,
    readiness takes the pod out of rotation after 15 s of failures) and :func:`liveness`: the
    probes of every engine whose ``/health`` answers once the model is loaded."""
    return {
        "startupProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": startup_failures,
        },
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": liveness(),
    }
