"""The HTTPS endpoint the API server calls to validate FineTuneJobs and ModelDeployments.

Every operator replica serves it, leader or not (a Service in front of the replicas may send a
review to any of them), in a thread of its own beside kopf. It turns an ``AdmissionReview`` into
a call of :func:`decide.denials` whose ``allowed`` callback is a SubjectAccessReview for the
requesting user (:meth:`kubetune.clients.kube.Kube.can`), and answers allowed or a 403 with one
line per denial. A review that cannot be checked (the API server did not answer the
SubjectAccessReview) is refused: never admit what was not checked.

kopf's own admission server was not used: it runs inside ``kopf.run``, which with leader election
only the leader reaches, and its managed configuration is removed on shutdown, which would make
the failure policy meaningless.

:func:`configuration` builds the ValidatingWebhookConfiguration (pure), used when the operator
manages it itself (``--webhook-url``: development and the integration tests, with a self-signed
certificate from :mod:`certs`); the chart renders the same configuration for a Service.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from kubetune import logs
from kubetune.clients import kube as kubeclient
from kubetune.controllers.admission import certs, decide
from kubetune.controllers.settings import Settings

log = logging.getLogger(__name__)
PATH = "/validate"
MAX_BODY = 4 << 20  # an AdmissionReview of a large object; the API server caps objects at ~3 MiB
FailurePolicy = Literal["Fail", "Ignore"]
DEFAULT_NAME = "kubetune-admission"


@dataclasses.dataclass(frozen=True)
class Options:
    """How the webhook is served and, optionally, configured.

    ``cert_dir`` holds ``tls.crt``/``tls.key`` (mounted by the chart); without it a self-signed
    certificate is made for the host of ``url``. With ``url`` the operator creates or updates the
    ValidatingWebhookConfiguration ``name`` itself, pointing at ``url`` with that certificate as
    ``caBundle``; it leaves it in place when it stops, so ``failure_policy`` decides what happens
    while it is down.
    """

    port: int = 9443
    host: str = "0.0.0.0"
    cert_dir: Path | None = None
    url: str | None = None
    name: str = DEFAULT_NAME
    failure_policy: FailurePolicy = "Fail"
    namespaces: Sequence[str] = ()
    timeout_seconds: int = 10


def review(request: Mapping[str, Any], kube: kubeclient.Kube, settings: Settings) -> dict[str, Any]:
    """The ``response`` of an AdmissionReview for ``request`` (its ``request`` field)."""
    uid = str(request.get("uid") or "")
    obj = request.get("object")
    user_info: Mapping[str, Any] = request.get("userInfo") or {}
    namespace = str(request.get("namespace") or "")
    if request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, dict):
        return {"uid": uid, "allowed": True}
    user = str(user_info.get("username") or "(unknown user)")

    def allowed(verb: str, resource: str, name: str) -> bool:
        return kube.can(user_info, verb, resource, namespace=namespace, name=name)

    old = request.get("oldObject") if request.get("operation") == "UPDATE" else None
    try:
        lines = decide.denials(
            {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": namespace}},
            user=user,
            allowed=allowed,
            trainer_image=settings.trainer_image,
            old=old if isinstance(old, dict) else None,
        )
    except kubeclient.ApiError as exc:
        lines = [f"cannot check the references of this object ({exc}); try again"]
    if not lines:
        return {"uid": uid, "allowed": True}
    kind = (request.get("kind") or {}).get("kind", "object")
    name = (obj.get("metadata") or {}).get("name") or request.get("name") or ""
    log.info(
        "admission denied",
        extra=logs.fields(kind=kind, namespace=namespace, name=name, user=user, denials=lines),
    )
    return {
        "uid": uid,
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": "\n".join(lines)},
    }


def configuration(
    name: str,
    client_config: Mapping[str, Any],
    *,
    failure_policy: FailurePolicy,
    namespaces: Sequence[str] = (),
    timeout_seconds: int = 10,
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration: CREATE and UPDATE of the main resources only (status
    writes by the operator do not pass through it), in ``namespaces`` or everywhere."""
    webhook: dict[str, Any] = {
        "name": "references.kubetune.io",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "timeoutSeconds": timeout_seconds,
        "clientConfig": dict(client_config),
        "rules": [
            {
                "apiGroups": ["kubetune.io"],
                "apiVersions": ["v1alpha1"],
                "resources": ["finetunejobs", "modeldeployments"],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Namespaced",
            }
        ],
    }
    if namespaces:
        webhook["namespaceSelector"] = {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(namespaces)}
            ]
        }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kubetune-operator"}},
        "webhooks": [webhook],
    }


class Webhook:
    """The HTTPS server; :meth:`start` serves in a daemon thread, :meth:`stop` closes it."""

    def __init__(self, kube: kubeclient.Kube, settings: Settings, options: Options) -> None:
        self.kube, self.settings, self.options = kube, settings, options
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if options.cert_dir is not None:
            self.cert = certs.ServingCert(options.cert_dir / "tls.crt", options.cert_dir / "tls.key")
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="kubetune-webhook-")
            host = urllib.parse.urlsplit(options.url or "").hostname or "localhost"
            self.cert = certs.self_signed(Path(self._tmp.name), [host])
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30  # seconds per socket operation, TLS handshake included: no client holds a thread

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.split("?", 1)[0] != PATH or not 0 < length <= MAX_BODY:
                    self._send(404 if length else 400, {"message": "POST an AdmissionReview to /validate"})
                    return
                try:
                    body = json.loads(self.rfile.read(length))
                    request = body["request"]
                except (ValueError, KeyError, TypeError):
                    self._send(400, {"message": "not an AdmissionReview"})
                    return
                answer = review(request, webhook.kube, webhook.settings)
                self._send(
                    200,
                    {
                        "apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
                        "kind": "AdmissionReview",
                        "response": answer,
                    },
                )

            def _send(self, code: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((options.host, options.port), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert.certfile), str(self.cert.keyfile))
        # the handshake happens in the request's thread, not in the accept loop
        self.server.socket = context.wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.thread = threading.Thread(target=self.server.serve_forever, name="kubetune-webhook", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> Webhook:
        self.thread.start()
        if self.options.url:
            self.kube.apply_cluster_object(
                configuration(
                    self.options.name,
                    {"url": self.options.url, "caBundle": _b64(self.cert.ca_pem)},
                    failure_policy=self.options.failure_policy,
                    namespaces=self.options.namespaces,
                    timeout_seconds=self.options.timeout_seconds,
                )
            )
        log.info(
            "admission webhook serving",
            extra=logs.fields(port=self.port, url=self.options.url or "(configured by the chart)"),
        )
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
