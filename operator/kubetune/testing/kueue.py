"""Real Kueue for tests: its controller-manager against the test control plane.

:class:`Kueue` installs Kueue's CRDs and its manager ClusterRole, starts ``kueue`` (built by
``hack/build-kueue.sh`` from the Go module at a pinned version, with the manifests of that
same module version) as its own user, and registers its admission and conversion webhooks so
that they really run. A cluster install reaches them through the Service ``kueue-webhook-service``
with a certificate Kueue makes itself; the test control plane has no kube-proxy and the manager
runs on the host, so here:

- the webhooks are URL-based configurations, ``https://127.0.0.1:PORT/<path>``, with our CA as
  ``caBundle``, and the CRDs' conversion webhooks point at the same URL's ``/convert``;
- Kueue's internal cert management is off: it serves a certificate for 127.0.0.1 signed by the
  test CA, from ``webhook.certDir``;
- only the webhooks of Kueue's own API and of ``batch/v1`` Jobs are registered, and only the
  ``batch/job`` integration is enabled (the other frameworks' CRDs are not installed);
- leader election and the metrics endpoint are off; the visibility API (an aggregated API
  behind a Service) is not registered.

docs/architecture.md lists the same differences. Everything is removed again on exit (the
webhook configurations first, so that the cluster never calls a stopped Kueue).
"""

from __future__ import annotations

import base64
import copy
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kubetune.testing import crds, pki, procs
from kubetune.testing.kube import Kube, is_status
from kubetune.testing.servers import free_port
from kubetune.testing.waiting import wait_for

VERSION = os.environ.get("KUEUE_VERSION", "0.17.0").removeprefix("v")
BUILD_HINT = (
    "build it with `hack/build-kueue.sh` (Go modules, cached in ~/.cache/kubetune/kueue-v<version>) "
    "or point KUBETUNE_KUEUE_DIR at a directory laid out like that cache"
)
NAMESPACE = "kueue-system"
USER = f"system:serviceaccount:{NAMESPACE}:kueue-controller-manager"
PREFIX = "kueue-"  # the name prefix of a cluster install (config/default)
# Webhooks registered here: Kueue's own API and batch/v1 Jobs (the one integration enabled).
GROUPS = frozenset({"kueue.x-k8s.io", "batch"})
Obj = dict[str, Any]


def find_install() -> Path | None:
    """``$KUBETUNE_KUEUE_DIR``, else the build cache for :data:`VERSION`; None when missing."""
    explicit = os.environ.get("KUBETUNE_KUEUE_DIR")
    cache = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune"))
    root = Path(explicit) if explicit else cache / f"kueue-v{VERSION}"
    return root if (root / "bin" / "kueue").is_file() and (root / "crd").is_dir() else None


def _docs(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def crd_documents(root: Path, url: str, ca_bundle: str) -> list[Obj]:
    """Kueue's CRDs with the conversion webhooks of a cluster install (config/components/crd
    patches), pointed at ``url``/convert instead of the webhook Service."""
    patched = {d["metadata"]["name"] for f in root.glob("crd/webhook_in_*.yaml") for d in _docs(f)}
    out = []
    for file in sorted(root.glob("crd/kueue.x-k8s.io_*.yaml")):
        for doc in _docs(file):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            if doc["metadata"]["name"] in patched:
                doc["spec"]["conversion"] = {
                    "strategy": "Webhook",
                    "webhook": {
                        "clientConfig": {"url": f"{url}/convert", "caBundle": ca_bundle},
                        "conversionReviewVersions": ["v1"],
                    },
                }
            out.append(doc)
    return out


def webhook_configurations(root: Path, url: str, ca_bundle: str) -> list[Obj]:
    """Kueue's mutating and validating webhook configurations (config/components/webhook),
    limited to :data:`GROUPS`, each webhook called at ``url`` + its Service path."""
    out = []
    for doc in _docs(root / "webhook" / "manifests.yaml"):
        if doc.get("kind") not in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            continue
        doc = copy.deepcopy(doc)
        doc["metadata"] = {"name": PREFIX + doc["metadata"]["name"]}
        hooks = []
        for hook in doc.get("webhooks") or []:
            groups = {g for rule in hook.get("rules") or [] for g in rule.get("apiGroups") or []}
            if not groups <= GROUPS:
                continue
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": url + path, "caBundle": ca_bundle}
            hooks.append(hook)
        doc["webhooks"] = hooks
        out.append(doc)
    return out


# The roles a cluster install binds to Kueue's ServiceAccount (config/components/rbac).
MANAGER_ROLES = ("role.yaml", "manager_secrets_role.yaml")


def manager_rbac(root: Path) -> list[Obj]:
    """The manager's ClusterRole and Role (in :data:`NAMESPACE`) with bindings to :data:`USER`."""
    out: list[Obj] = []
    for file in MANAGER_ROLES:
        for doc in _docs(root / "rbac" / file):
            name = PREFIX + doc["metadata"]["name"]
            cluster = doc["kind"] == "ClusterRole"
            meta: Obj = {"name": name} if cluster else {"name": name, "namespace": NAMESPACE}
            out.append({**doc, "metadata": meta})
            out.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding" if cluster else "RoleBinding",
                    "metadata": {**meta, "name": name + "-binding"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": doc["kind"], "name": name},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
                }
            )
    return out


def configuration(*, webhook_port: int, health_port: int, cert_dir: Path) -> Obj:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2) for the test control plane."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "clientConnection": {"qps": 50, "burst": 100},
        "integrations": {"frameworks": ["batch/job"]},
    }


def _apply(kube: Kube, obj: Obj) -> None:
    path = kube.path_of(obj)
    try:
        kube.create(kube.path_of(obj, collection=True), obj)
    except Exception as exc:
        if not is_status(exc, 409):
            raise
        current = kube.get(path)
        obj = {
            **obj,
            "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        kube.replace(path, obj)


# Without internal cert management Kueue reads its metrics server's certificate from this fixed
# path (cmd/kueue/main.go), where cert-manager would mount it; it exits when it is missing.
METRICS_CERTS = Path("/etc/kueue/metrics/certs")


def _with_metrics_certs(certs: Path, argv: list[str]) -> list[str]:
    """``argv`` run in a private mount namespace where :data:`METRICS_CERTS` is ``certs`` (a
    bind mount, as a Secret volume would be), so no file of ours lands on the host's /etc.
    Only the empty mount point is created on the host, once."""
    METRICS_CERTS.mkdir(parents=True, exist_ok=True)
    script = 'mount --bind "$0" "$1" && shift 2 && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        str(certs),
        str(METRICS_CERTS),
        "--",
        *argv,
    ]


class Kueue:
    """Kueue's controller-manager for one test cluster; a context manager."""

    def __init__(self, root: Path, kube: Kube, cluster_pki: pki.Pki, server: str, workdir: Path) -> None:
        self.root, self.kube, self.pki, self.server = root, kube, cluster_pki, server
        self.workdir = workdir
        self.webhook_port, self.health_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.webhook_port}"
        self.proc: procs.Process | None = None
        self.webhooks: list[Obj] = []

    def log(self) -> str:
        return self.proc.log_tail(60) if self.proc is not None else ""

    def __enter__(self) -> Kueue:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca_bundle = base64.b64encode(self.pki.ca_crt.read_bytes()).decode()
        # the webhook server's certificate: for 127.0.0.1, signed by the cluster's CA
        certs = self.workdir / "certs"
        certs.mkdir(exist_ok=True)
        crt, key = pki.serving_cert(self.pki, "kueue-webhook", ips=("127.0.0.1",))
        (certs / "tls.crt").write_bytes(crt)
        (certs / "tls.key").write_bytes(key)
        if self.kube.get_or_none(f"/api/v1/namespaces/{NAMESPACE}") is None:
            self.kube.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        installed = []
        for doc in crd_documents(self.root, self.url, ca_bundle):
            _apply(self.kube, doc)
            installed.append(doc["metadata"]["name"])
        for name in installed:
            wait_for(lambda n=name: crds.established(self.kube, n), 30, f"CRD {name} Established")  # type: ignore[misc]
        # Kueue's own identity, bound to the manager's roles of this version (config/components/rbac)
        for doc in manager_rbac(self.root):
            _apply(self.kube, doc)
        cert_pem, key_pem = pki.client_cert(self.pki, USER, ("system:serviceaccounts",))
        kubeconfig = pki.kubeconfig(
            self.workdir / "kubeconfig",
            self.server,
            self.pki.ca_crt.read_bytes(),
            user=USER,
            cert_pem=cert_pem,
            key_pem=key_pem,
        )
        config = self.workdir / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                configuration(webhook_port=self.webhook_port, health_port=self.health_port, cert_dir=certs)
            )
        )
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["KUBECONFIG"] = str(kubeconfig)
        kueue = [
            str(self.root / "bin" / "kueue"),
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            # the visibility API is an aggregated API behind a Service, with its certificate at
            # a fixed /visibility path: not run here (see the module docstring)
            "--feature-gates=VisibilityOnDemand=false",
        ]
        self.proc = procs.Process("kueue", _with_metrics_certs(certs, kueue), self.workdir / "kueue.log", env)
        self.proc.start()
        self._wait_ready()
        self.webhooks = webhook_configurations(self.root, self.url, ca_bundle)
        for doc in self.webhooks:
            _apply(self.kube, doc)

    def _wait_ready(self) -> None:
        proc = self.proc
        assert proc is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_crt))

        def ready() -> bool:
            if not proc.running():
                raise RuntimeError(f"kueue exited with {proc.exit_code()}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as r:
                    if r.status != 200:
                        return False
                # the webhook server answers TLS with our certificate
                with urllib.request.urlopen(f"{self.url}/convert", timeout=2, context=context):
                    return True
            except urllib.error.HTTPError as exc:
                return exc.code in (400, 405)  # up: it refuses a GET without a review
            except OSError:
                return False

        wait_for(ready, 90, "kueue to be ready (health and webhook server)", interval=0.3)

    def __exit__(self, *exc: object) -> None:
        for doc in self.webhooks:
            self.kube.delete(self.kube.path_of(doc))
        self.webhooks = []
        if self.proc is not None:
            self.proc.stop(grace=10)
            self.proc = None
