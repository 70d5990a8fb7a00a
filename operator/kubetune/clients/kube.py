"""Kubernetes REST for the operator and the trainer: plain dicts in, plain dicts out.

Built on the official client's ``ApiClient`` (TLS, kubeconfig or in-cluster auth) but never on
its generated models: those reject fields newer than the client, and a patch sent through them
as a dict goes out as a JSON patch. Every patch here names its content type. Paths are computed
from ``apiVersion``/``kind`` with a small built-in table (no discovery round trip per call).
Errors surface as :class:`ApiError` with the HTTP status. Talks to the network; decides nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kubernetes import client, config

# The generated client is only partly annotated; keep mypy --strict honest about it.
_config: Any = config
Obj = dict[str, Any]
PatchKind = Literal["merge", "strategic", "json"]
_PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# (apiVersion, kind) -> (plural, namespaced): the kinds kubetune reads and writes.
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Event"): ("events", True),
    ("kueue.x-k8s.io/v1beta2", "Workload"): ("workloads", True),
    ("kueue.x-k8s.io/v1beta2", "LocalQueue"): ("localqueues", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("httproutes", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
    ("kubetune.io/v1alpha1", "FineTuneJob"): ("finetunejobs", True),
    ("kubetune.io/v1alpha1", "Adapter"): ("adapters", True),
    ("kubetune.io/v1alpha1", "ModelDeployment"): ("modeldeployments", True),
    ("authorization.k8s.io/v1", "SubjectAccessReview"): ("subjectaccessreviews", False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): (
        "validatingwebhookconfigurations",
        False,
    ),
}


class ApiError(Exception):
    """A non-2xx answer from the API server; ``status`` is the HTTP code (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def path(api_version: str, kind: str, namespace: str | None = None, name: str = "", sub: str = "") -> str:
    """The URL path of a collection or an object, e.g. ``/apis/batch/v1/namespaces/ml/jobs/x``."""
    try:
        plural, namespaced = KINDS[(api_version, kind)]
    except KeyError:
        raise LookupError(f"kubetune.clients.kube does not know kind {kind!r} in {api_version!r}") from None
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    out = f"{base}/namespaces/{namespace}/{plural}" if namespaced and namespace else f"{base}/{plural}"
    if name:
        out += f"/{name}"
    if sub:
        out += f"/{sub}"
    return out


def _check(status: int, raw: bytes) -> None:
    """Raise :class:`ApiError` for a non-2xx answer, with the API server's message."""
    if 200 <= status <= 299:
        return
    message = raw.decode(errors="replace")
    with contextlib.suppress(ValueError):
        message = json.loads(raw).get("message", message)
    raise ApiError(status, message)


def has_credentials(env: Mapping[str, str] | None = None) -> bool:
    """Whether in-cluster credentials exist (service host env and a mounted token)."""
    env = os.environ if env is None else env
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT_DIR / "token").is_file()


def context_namespace(kubeconfig: str | None = None, context: str | None = None) -> str | None:
    """The namespace a kubeconfig context names (``context``, else the current one), as kubectl
    uses it when no ``-n`` is given; None without a kubeconfig or a namespace in it."""
    try:
        contexts, current = _config.list_kube_config_contexts(
            config_file=kubeconfig or os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]
        )
    except Exception:  # no kubeconfig (in-cluster, or none at all): the caller's default applies
        return None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


class Kube:
    """Minimal, thread-safe REST verbs over one ``ApiClient``."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, context: str | None = None) -> Kube:
        """In-cluster credentials when present, else ``kubeconfig`` / ``$KUBECONFIG`` / ~/.kube/config
        (its current context, or ``context``)."""
        if kubeconfig is None and context is None and has_credentials():
            cfg = client.Configuration()
            _config.load_incluster_config(client_configuration=cfg)
            cfg.connection_pool_maxsize = 32
            return cls(client.ApiClient(cfg))
        api: client.ApiClient = _config.new_client_from_config(config_file=kubeconfig, context=context)
        # One client serves every operator worker thread; urllib3's default pool of 4
        # connections would serialise them.
        api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
        return cls(api)

    @classmethod
    def with_token(cls, host: str, token: str, ca_file: str | None = None) -> Kube:
        """A client authenticating with a bearer token (e.g. a ServiceAccount's)."""
        cfg = client.Configuration()
        cfg.host = host
        cfg.api_key = {"authorization": f"Bearer {token}"}
        if ca_file:
            cfg.ssl_ca_cert = ca_file
        return cls(client.ApiClient(cfg))

    def raw(
        self,
        method: str,
        url_path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: object = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float | None = 30.0,
    ) -> bytes:
        resp = self._call(method, url_path, query, body, content_type, accept, timeout)
        raw: bytes = resp.read()
        _check(int(resp.status), raw)
        return raw

    def _call(
        self,
        method: str,
        url_path: str,
        query: Mapping[str, str | int | bool] | None,
        body: object,
        content_type: str,
        accept: str,
        timeout: float | None,
    ) -> Any:
        params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()]
        method, url, headers, data, post = self.api.param_serialize(
            method=method,
            resource_path=url_path,
            query_params=params,
            header_params={"Content-Type": content_type, "Accept": accept},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp: Any = self.api.call_api(method, url, headers, data, post, _request_timeout=timeout)
        except client.ApiException as exc:  # raised for transport problems by some versions
            raise ApiError(int(exc.status or 0), str(exc.reason or exc)) from None
        except OSError as exc:
            raise ApiError(0, f"cannot reach the API server: {exc}") from None
        return resp

    def request(self, method: str, url_path: str, **kwargs: Any) -> Obj:
        raw = self.raw(method, url_path, **kwargs)
        result = json.loads(raw) if raw else {}
        if not isinstance(result, dict):
            raise ApiError(0, f"unexpected answer from {url_path}: {type(result).__name__}")
        return result

    # --- verbs ------------------------------------------------------------------------------

    def get(self, url_path: str, **query: str | int | bool) -> Obj | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", url_path, query=query)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, url_path: str, **query: str | int | bool) -> list[Obj]:
        items = self.request("GET", url_path, query=query).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def create(self, obj: Obj) -> Obj | None:
        """POST ``obj``; returns it, or None when an object of that name already exists."""
        meta = obj.get("metadata") or {}
        try:
            return self.request("POST", path(obj["apiVersion"], obj["kind"], meta.get("namespace")), body=obj)
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise

    def patch(
        self, url_path: str, body: object, kind: PatchKind = "merge", *, field_manager: str | None = None
    ) -> Obj | None:
        """Patch (as ``field_manager`` when given); None when the object is gone."""
        query = {"fieldManager": field_manager} if field_manager else None
        try:
            return self.request("PATCH", url_path, body=body, content_type=_PATCH_TYPES[kind], query=query)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, url_path: str, propagation: str = "Background") -> bool:
        """Delete; False when it was already gone."""
        try:
            self.request(
                "DELETE",
                url_path,
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
            )
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def can(
        self,
        user_info: Mapping[str, Any],
        verb: str,
        resource: str,
        *,
        namespace: str,
        name: str = "",
        group: str = "",
    ) -> bool:
        """Whether the user of an AdmissionReview's ``userInfo`` may ``verb`` ``resource`` (a
        SubjectAccessReview: RBAC and every other authorizer of the cluster answer)."""
        spec: Obj = {
            "user": user_info.get("username") or "",
            "groups": list(user_info.get("groups") or []),
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": group,
                "resource": resource,
                "name": name,
            },
        }
        if user_info.get("uid"):
            spec["uid"] = user_info["uid"]
        if user_info.get("extra"):
            spec["extra"] = {k: list(v) for k, v in user_info["extra"].items()}
        review = self.request(
            "POST",
            path("authorization.k8s.io/v1", "SubjectAccessReview"),
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        return bool((review.get("status") or {}).get("allowed"))

    def apply_cluster_object(self, obj: Obj) -> Obj | None:
        """Create a cluster-scoped object, or merge-patch it over the one of that name."""
        created = self.create(obj)
        if created is not None:
            return created
        url = path(obj["apiVersion"], obj["kind"], None, obj["metadata"]["name"])
        return self.patch(url, {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int | None = None) -> str:
        """A container's log as text ('' when the pod or its log is not there yet)."""
        query: dict[str, str | int | bool] = {"container": container}
        if tail_lines is not None:
            query["tailLines"] = tail_lines
        try:
            raw = self.raw(
                "GET", path("v1", "Pod", namespace, pod, "log"), query=query, accept="*/*", timeout=15
            )
        except ApiError as exc:
            if exc.status in (400, 404):
                return ""
            raise
        return raw.decode("utf-8", errors="replace")

    def follow_pod_log(
        self, namespace: str, pod: str, container: str, tail_lines: int | None = None
    ) -> Iterator[bytes]:
        """A container's log, streamed as it grows (``follow=true``) until the container ends."""
        query: dict[str, str | int | bool] = {"container": container, "follow": True}
        if tail_lines is not None:
            query["tailLines"] = tail_lines
        url = path("v1", "Pod", namespace, pod, "log")
        resp = self._call("GET", url, query, None, "application/json", "*/*", None)
        if not 200 <= resp.status <= 299:
            _check(int(resp.status), resp.read())
        try:
            yield from resp.response.stream(4096, decode_content=True)
        finally:
            resp.response.release_conn()

    def event(
        self,
        involved: Obj,
        type: Literal["Normal", "Warning"],
        reason: str,
        message: str,
        *,
        component: str = "kubetune-operator",
        now: datetime | None = None,
    ) -> None:
        """Record a core/v1 Event about ``involved`` (an object with apiVersion/kind/metadata)."""
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'kubetune')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type,
            "reason": reason,
            "message": message[:1000],
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self.request("POST", path("v1", "Event", namespace), body=body)

    def close(self) -> None:
        api: Any = self.api
        api.close()
