"""Operator-wide settings: images, default registry, Prometheus, timings.

Read once at start-up (from flags and ``KUBETUNE_*`` environment variables) and passed into
reconcile and the pure builders, so builders never read the environment themselves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from kubetune.api.contract import pod
from kubetune.controllers import quantities

DEFAULT_TRAINER_IMAGE = "ghcr.io/kubetune/trainer:0.1.0"
DEFAULT_KUBETUNE_IMAGE = "ghcr.io/kubetune/kubetune:0.1.0"


# oci://host[:port]/path: what a training pod can push to and every other pod can pull from
_REMOTE_PREFIX = re.compile(r"^oci://[a-zA-Z0-9.\-]+(:[0-9]+)?(/[a-z0-9._\-]+)+$")


class SettingsError(ValueError):
    """A setting the operator cannot run with; ``str()`` is one line naming it and the fix."""


def check_registry_prefix(value: str) -> str:
    """``value`` without a trailing slash if it is a remote ``oci://host/path`` prefix.

    A bare ``registry.example.com/ml`` would reach the training pod as a local OCI layout path:
    the adapter would be pushed into the pod's own volume and vanish with it.
    """
    prefix = value.strip().rstrip("/")
    if not _REMOTE_PREFIX.match(prefix):
        hint = (
            f"oci://{prefix}" if prefix and "://" not in prefix else "oci://registry.example.com/ml/adapters"
        )
        raise SettingsError(
            f"KUBETUNE_REGISTRY (chart value registry.default) is {value!r}, not a remote OCI "
            f"repository prefix; write it as oci://HOST[:PORT]/PATH in lowercase, e.g. {hint}"
        )
    return prefix


def insecure_hosts(value: str) -> tuple[str, ...]:
    """``KUBETUNE_REGISTRY_INSECURE``: a comma list of registry hosts that talk plain HTTP
    (read as :func:`kubetune.api.contract.pod.plain_http_hosts` reads it in the pods).

    ``true`` is refused: it would send every registry's traffic, credentials included, over
    plain HTTP, also to hosts a job's spec names.
    """
    plain = pod.plain_http_hosts(value)
    if plain.every_host:
        raise SettingsError(
            f"KUBETUNE_REGISTRY_INSECURE is {value!r}, which would make every registry host plain "
            "HTTP; list the hosts that are, e.g. registry.ml.svc:5000 (chart value registry.insecureHosts)"
        )
    return plain.hosts


def check_prometheus_url(value: str, env_name: str, chart_value: str) -> str | None:
    """``value`` without a trailing slash if it is an ``http(s)://`` base URL; None when empty."""
    url = value.strip().rstrip("/")
    if not url:
        return None
    if not re.match(r"^https?://[^/\s@]+(/\S*)?$", url):
        raise SettingsError(
            f"{env_name} (chart value {chart_value}) holds {value.strip()!r}, not a Prometheus base URL; "
            "write it as http(s)://HOST[:PORT][/PATH], e.g. http://prometheus.monitoring.svc:9090"
        )
    return url


def _quantity(env: dict[str, str], name: str, chart_value: str, default: str) -> str:
    """A positive resource quantity from ``env[name]``, or ``default`` when unset."""
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        positive = quantities.parse(value) > 0
    except ValueError:
        positive = False
    if not positive:
        raise SettingsError(
            f"{name} (chart value {chart_value}) is {value!r}, not a positive Kubernetes quantity; "
            f"write e.g. {default!r}"
        )
    return value


@dataclass(frozen=True)
class Compute:
    """CPU and memory a container requests and is limited to (requests equal limits, so a
    ResourceQuota on requests or on limits counts the same amounts and the pod is Guaranteed)."""

    cpu: int | str
    memory: int | str

    def manifest(self, extra: dict[str, int | str] | None = None) -> dict[str, Any]:
        """``resources`` of a container: these amounts plus ``extra`` (e.g. nvidia.com/gpu)."""
        amounts: dict[str, int | str] = {"cpu": self.cpu, "memory": self.memory, **(extra or {})}
        return {"requests": dict(amounts), "limits": dict(amounts)}


DEFAULT_SERVING = Compute("2", "8Gi")
# Init containers cost nothing extra: a pod counts the larger of its biggest init container
# and the sum of its other containers, so a pull may hash at a full core.
DEFAULT_PULL = Compute("1", "1Gi")
DEFAULT_VERIFIER = Compute("100m", "256Mi")


def _seconds(value: str, env_name: str, default: float) -> float:
    if not value.strip():
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 300:
        raise SettingsError(f"{env_name} is {value!r}; write a number of seconds between 0 and 300, e.g. 5")
    return seconds


_QUEUE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _queue_name(value: str) -> str | None:
    """``KUBETUNE_KUEUE_DEFAULT_QUEUE``: a LocalQueue name, or empty for none."""
    value = value.strip()
    if not value:
        return None
    if len(value) > 253 or not _QUEUE_NAME.match(value):
        raise SettingsError(
            f"KUBETUNE_KUEUE_DEFAULT_QUEUE (chart value kueue.defaultQueueName) is {value!r}, not a "
            "LocalQueue name (lowercase letters, digits, '-' and '.'); set it to the name of the "
            "LocalQueue each namespace has, or leave it empty"
        )
    return value


@dataclass(frozen=True)
class Settings:
    """What every reconcile needs to know that is not in the object itself."""

    trainer_image: str = DEFAULT_TRAINER_IMAGE
    image_pull_policy: str = "IfNotPresent"
    # oci://host/prefix; a job without spec.output.repository pushes to
    # <prefix>/<namespace>/<job name> (see registry_target)
    default_registry: str | None = None
    # registry hosts (host[:port]) that talk plain HTTP; every other host gets TLS
    insecure_registries: tuple[str, ...] = ()
    preflight_cpu: str = "1"
    preflight_memory: str = "2Gi"
    # Containers whose spec leaves cpu or memory unset get these, so that a namespace whose
    # ResourceQuota covers cpu or memory admits them (the API server refuses a pod without).
    trainer_cpu: str = "4"
    trainer_memory: str = "16Gi"
    serving_cpu: int | str = DEFAULT_SERVING.cpu
    serving_memory: int | str = DEFAULT_SERVING.memory
    # the ModelDeployment pods' pull init containers and verifier sidecar (kubetune's own CLI)
    pull_cpu: int | str = DEFAULT_PULL.cpu
    pull_memory: int | str = DEFAULT_PULL.memory
    verifier_cpu: int | str = DEFAULT_VERIFIER.cpu
    verifier_memory: int | str = DEFAULT_VERIFIER.memory
    termination_grace_seconds: int = 300
    torchrun_port: int = 29500
    # complete checkpoints the trainer keeps on disk (--keep-checkpoints); status lists as many
    keep_checkpoints: int = pod.KEEP_CHECKPOINTS
    # a ReadWriteMany claim in each job's namespace shared by every training pod as a download
    # cache (Hugging Face and oci:// models and datasets), so jobs do not fetch them again
    cache_claim: str | None = None
    # ModelDeployments: the image of init containers and the verifier sidecar, and the
    # Prometheus that canary analysis asks when a spec names none.
    kubetune_image: str = DEFAULT_KUBETUNE_IMAGE
    prometheus_url: str | None = None
    # the FineTuneJob label whose value is its team in the metrics (kubetune_finetunejob_info)
    team_label: str = "kubetune.io/team"
    # Other Prometheus base URLs a ModelDeployment's spec.rollout.analysis.prometheusUrl may
    # name (exact match, trailing slash ignored); prometheus_url is always allowed. Any other
    # URL is never contacted.
    prometheus_allowed_urls: tuple[str, ...] = ()
    # A prom-label-proxy run with `-label namespace` in front of prometheus_url: custom
    # metrics[].query run only there, with namespace=<the object's namespace>.
    prometheus_tenant_url: str | None = None
    # Total deadline of one Prometheus query (connection, headers and body together).
    prometheus_timeout_s: float = 5.0
    # Kueue LocalQueue for FineTuneJobs without spec.queueName (chart value
    # kueue.defaultQueueName); None: such jobs start without Kueue.
    default_queue_name: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Settings from ``KUBETUNE_*`` variables; :class:`SettingsError` for one it cannot use."""
        env = dict(os.environ) if env is None else env
        registry = env.get(pod.REGISTRY, "").strip()
        return cls(
            trainer_image=env.get("KUBETUNE_TRAINER_IMAGE", DEFAULT_TRAINER_IMAGE),
            image_pull_policy=env.get("KUBETUNE_IMAGE_PULL_POLICY", "IfNotPresent"),
            default_registry=check_registry_prefix(registry) if registry else None,
            insecure_registries=insecure_hosts(env.get(pod.REGISTRY_INSECURE, "")),
            kubetune_image=env.get("KUBETUNE_IMAGE", DEFAULT_KUBETUNE_IMAGE),
            team_label=env.get("KUBETUNE_TEAM_LABEL", "").strip() or "kubetune.io/team",
            prometheus_url=check_prometheus_url(
                env.get("KUBETUNE_PROMETHEUS_URL", ""), "KUBETUNE_PROMETHEUS_URL", "prometheus.url"
            ),
            prometheus_allowed_urls=tuple(
                url
                for item in env.get("KUBETUNE_PROMETHEUS_ALLOWED_URLS", "").split(",")
                if (
                    url := check_prometheus_url(
                        item, "KUBETUNE_PROMETHEUS_ALLOWED_URLS", "prometheus.allowedUrls"
                    )
                )
            ),
            prometheus_tenant_url=check_prometheus_url(
                env.get("KUBETUNE_PROMETHEUS_TENANT_URL", ""),
                "KUBETUNE_PROMETHEUS_TENANT_URL",
                "prometheus.tenantProxyUrl",
            ),
            prometheus_timeout_s=_seconds(
                env.get("KUBETUNE_PROMETHEUS_TIMEOUT", ""), "KUBETUNE_PROMETHEUS_TIMEOUT", 5.0
            ),
            cache_claim=env.get("KUBETUNE_CACHE_CLAIM") or None,
            default_queue_name=_queue_name(env.get("KUBETUNE_KUEUE_DEFAULT_QUEUE", "")),
            preflight_cpu=_amount(env, "preflight_cpu"),
            preflight_memory=_amount(env, "preflight_memory"),
            trainer_cpu=_amount(env, "trainer_cpu"),
            trainer_memory=_amount(env, "trainer_memory"),
            serving_cpu=_amount(env, "serving_cpu"),
            serving_memory=_amount(env, "serving_memory"),
            pull_cpu=_amount(env, "pull_cpu"),
            pull_memory=_amount(env, "pull_memory"),
            verifier_cpu=_amount(env, "verifier_cpu"),
            verifier_memory=_amount(env, "verifier_memory"),
        )

    @property
    def serving_compute(self) -> Compute:
        return Compute(self.serving_cpu, self.serving_memory)

    @property
    def pull_compute(self) -> Compute:
        return Compute(self.pull_cpu, self.pull_memory)

    @property
    def verifier_compute(self) -> Compute:
        return Compute(self.verifier_cpu, self.verifier_memory)

    def registry_target(self, repository: str | None, namespace: str | None, name: str) -> str | None:
        """Where a job pushes: its own ``spec.output.repository``, else
        ``<default prefix>/<namespace>/<job name>`` (namespaces never share a repository); None
        when neither is set."""
        if repository:
            return repository
        if not self.default_registry:
            return None
        return f"{self.default_registry}/{namespace or 'default'}/{name}"


# (setting, environment variable, chart value) of every resource amount the operator fills in
_COMPUTE_ENV = (
    ("preflight_cpu", "KUBETUNE_PREFLIGHT_CPU", "resourceDefaults.preflight.cpu"),
    ("preflight_memory", "KUBETUNE_PREFLIGHT_MEMORY", "resourceDefaults.preflight.memory"),
    ("trainer_cpu", "KUBETUNE_TRAINER_CPU", "resourceDefaults.trainer.cpu"),
    ("trainer_memory", "KUBETUNE_TRAINER_MEMORY", "resourceDefaults.trainer.memory"),
    ("serving_cpu", "KUBETUNE_SERVING_CPU", "resourceDefaults.serving.cpu"),
    ("serving_memory", "KUBETUNE_SERVING_MEMORY", "resourceDefaults.serving.memory"),
    ("pull_cpu", "KUBETUNE_PULL_CPU", "resourceDefaults.pull.cpu"),
    ("pull_memory", "KUBETUNE_PULL_MEMORY", "resourceDefaults.pull.memory"),
    ("verifier_cpu", "KUBETUNE_VERIFIER_CPU", "resourceDefaults.verifier.cpu"),
    ("verifier_memory", "KUBETUNE_VERIFIER_MEMORY", "resourceDefaults.verifier.memory"),
)


def _amount(env: dict[str, str], attr: str) -> str:
    """The setting ``attr`` from its environment variable, else its default."""
    name, chart_value = next((n, c) for a, n, c in _COMPUTE_ENV if a == attr)
    return _quantity(env, name, chart_value, str(getattr(Settings, attr)))
