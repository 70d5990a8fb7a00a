"""Dict-in, dict-out Kubernetes REST calls for the harness and the node agent.

Built on the official client's ``ApiClient`` (TLS, kubeconfig auth) and its ``watch`` module,
but exchanges plain JSON dicts with camelCase keys: the harness writes objects the way the API
documents them and never trips over a generated model that lags the server. Patches always
name their content type (the generated client would otherwise send a JSON patch). This module
is for tests and the test node agent only; product code talks to Kubernetes in ``clients/``.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from kubernetes import client, config, watch

# The generated client is only partly annotated; these handles keep mypy --strict honest
# about where untyped code is called.
_config: Any = config
_watch: Any = watch

Obj = dict[str, Any]
PatchKind = Literal["merge", "strategic", "json"]
_PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
ApiException = client.ApiException


def api_client(kubeconfig: Path) -> client.ApiClient:
    """A fresh ``ApiClient`` for ``kubeconfig`` (does not touch the global default)."""
    api: client.ApiClient = _config.new_client_from_config(config_file=str(kubeconfig))
    return api


def is_status(exc: BaseException, *codes: int) -> bool:
    """True when ``exc`` is an API error with one of the HTTP ``codes``."""
    return isinstance(exc, ApiException) and exc.status in codes


class Kube:
    """Minimal REST verbs over one ``ApiClient``; paths are API paths like ``/api/v1/nodes``."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path) -> Kube:
        return cls(api_client(kubeconfig))

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: object = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Obj:
        params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()]
        method, url, headers, data, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        resp: Any = self.api.call_api(method, url, headers, data, post, _request_timeout=timeout)
        raw: bytes = resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException.from_response(http_resp=resp, body=raw.decode(errors="replace"), data=None)
        result = json.loads(raw) if raw else {}
        assert isinstance(result, dict)
        return result

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of ``kind`` in ``api_version``, from API discovery (cached)."""
        key = (api_version, kind)
        if key not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for res in self.get(base).get("resources") or []:
                if "/" not in res["name"]:
                    self._resources[(api_version, res["kind"])] = (res["name"], bool(res["namespaced"]))
        if key not in self._resources:
            raise LookupError(f"the API server serves no kind {kind!r} in {api_version!r}")
        return self._resources[key]

    def path_of(self, obj: Obj, namespace: str | None = None, *, collection: bool = False) -> str:
        """The URL path of ``obj`` (or of its collection), e.g. ``/apis/batch/v1/namespaces/x/jobs/y``."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        meta = obj.get("metadata") or {}
        ns = namespace or meta.get("namespace") or "default"
        path = f"{base}/namespaces/{ns}/{plural}" if namespaced else f"{base}/{plural}"
        return path if collection else f"{path}/{meta['name']}"

    def create_object(self, obj: Obj, namespace: str | None = None) -> Obj:
        """POST ``obj`` to its collection (path from discovery)."""
        return self.create(self.path_of(obj, namespace, collection=True), obj)

    def get(self, path: str, **query: str | int | bool) -> Obj:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> Obj | None:
        try:
            return self.get(path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, path: str, **query: str | int | bool) -> list[Obj]:
        items = self.get(path, **query).get("items") or []
        assert isinstance(items, list)
        return items

    def create(self, path: str, body: Obj, **query: str | int | bool) -> Obj:
        return self.request("POST", path, body=body, query=query)

    def replace(self, path: str, body: Obj) -> Obj:
        return self.request("PUT", path, body=body)

    def patch(self, path: str, body: object, kind: PatchKind = "merge", **query: str | int | bool) -> Obj:
        return self.request("PATCH", path, body=body, content_type=_PATCH_TYPES[kind], query=query)

    def apply(self, path: str, body: Obj, manager: str = "kubetune-testing", force: bool = True) -> Obj:
        """Server-side apply of ``body`` at ``path`` (the object's own URL)."""
        return self.request(
            "PATCH",
            path,
            body=body,
            content_type="application/apply-patch+yaml",
            query={"fieldManager": manager, "force": force},
        )

    def delete(self, path: str, body: Obj | None = None, missing_ok: bool = True) -> Obj | None:
        try:
            return self.request("DELETE", path, body=body)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def pod(self, namespace: str, name: str) -> Obj | None:
        return self.get_or_none(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def pods(self, namespace: str, selector: str = "") -> builtins.list[Obj]:
        query = {"labelSelector": selector} if selector else {}
        return self.list(f"/api/v1/namespaces/{namespace}/pods", **query)

    def events(self, namespace: str, name: str = "") -> builtins.list[Obj]:
        """Events in ``namespace``, only those about object ``name`` when given."""
        query = {"fieldSelector": f"involvedObject.name={name}"} if name else {}
        return self.list(f"/api/v1/namespaces/{namespace}/events", **query)

    def watch(self, list_func: Any, **kwargs: Any) -> Iterator[Obj]:
        """Raw watch events (``type`` and ``object`` as a dict) from a generated list function."""
        stream: Iterator[Obj] = _watch.Watch().stream(list_func, deserialize=False, **kwargs)
        return stream

    def core(self) -> Any:
        """The generated CoreV1Api on this client (for list functions to watch)."""
        return client.CoreV1Api(self.api)

    def close(self) -> None:
        api: Any = self.api
        api.close()


def namespaced(kind_path: str, namespace: str, name: str = "", sub: str = "") -> str:
    """Build ``/api/v1/namespaces/<ns>/<kind>[/<name>[/<sub>]]`` from ``kind_path``.

    ``kind_path`` is ``/api/v1/pods`` or ``/apis/batch/v1/jobs``: the group-version prefix and the
    resource, as for a cluster-wide list.
    """
    prefix, _, resource = kind_path.rpartition("/")
    path = f"{prefix}/namespaces/{namespace}/{resource}"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path
