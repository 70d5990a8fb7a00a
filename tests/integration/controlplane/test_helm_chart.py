"""The Helm chart: lints, renders, installs into a real API server, grants what the code uses.

``helm`` comes from ``hack/build-helm.sh`` (found in its cache, or through ``KUBETUNE_HELM``, or
on PATH); without it these tests skip, unless KUBETUNE_REQUIRE_HELM is set. Rendered manifests
go to the test cluster's kube-apiserver, so RBAC objects and the Deployment are validated by a
real server; SubjectAccessReviews then check the operator's ServiceAccount can do each verb
the controllers use and nothing it must not (secrets, pods exec, escalate/bind, other
namespaces in namespaced mode). One test installs the chart for real: its Deployment runs the
operator as a pod of the test cluster, with the chart's ServiceAccount, and reconciles a
FineTuneJob into its children (per-job Role and RoleBinding included, with no escalate/bind).
"""

from __future__ import annotations

import os
import subprocess
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from kubetune.api.v1alpha1.finetunejob import FineTuneJob
from kubetune.clients import kube as kubeclient
from kubetune.controllers.finetunejob import builders
from kubetune.controllers.settings import Settings
from kubetune.testing import Cluster, CrdReport
from kubetune.testing.kube import ApiException, Kube
from kubetune.testing.waiting import WaitTimeout, wait_for

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "kubetune"
FTJ = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/finetunejobs"
LEASE = "kubetune-operator"
Obj = dict[str, Any]
T = TypeVar("T")


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HELM_CACHE_HOME": "/tmp/kubetune-helm-cache",
        "HELM_CONFIG_HOME": "/tmp/kubetune-helm",
    }
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, env=env)


def render(helm: str, release: str, namespace: str, *sets: str) -> list[Obj]:
    """``helm template`` with ``--set`` values; the documents, in order."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for value in sets:
        args += ["--set", value]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


def env_of(deployment: Obj) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- rendering -------------------------------------------------------------------------------


def test_chart_lints_cleanly(helm: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    package = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == package
    assert chart["version"] == package


def test_defaults_render_a_cluster_wide_operator_with_two_electing_replicas(helm: str) -> None:
    docs = render(helm, "kubetune", "kubetune")
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",  # admission: create SubjectAccessReviews
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Service",  # the webhook's
            "Secret",  # the webhook's serving certificate
            "ValidatingWebhookConfiguration",
            "Deployment",
            "PodDisruptionBudget",  # one replica at a time in a drain
        ]
    ), kinds
    (dep,) = by_kind(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/kubetune/kubetune:0.1.0"
    assert container["command"] == ["kubetune"]
    assert container["args"][:2] == ["operator", "run"]
    assert "--leader-elect" in container["args"] and "--lease-namespace=kubetune" in container["args"]
    # client-go's timings: the leader stops (renew deadline) before another may take over
    for flag in ("--lease-duration=15", "--lease-renew-deadline=10", "--lease-retry-period=2"):
        assert flag in container["args"]
    assert not any(a.startswith("--namespace") for a in container["args"])  # cluster-wide
    env = env_of(dep)
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["KUBETUNE_TRAINER_IMAGE"] == "ghcr.io/kubetune/trainer:0.1.0"
    assert env["KUBETUNE_IMAGE"] == "ghcr.io/kubetune/kubetune:0.1.0"
    assert env["KUBETUNE_REGISTRY_INSECURE"] == ""  # no plain-HTTP hosts
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    svc, hook_svc = sorted(by_kind(docs, "Service"), key=lambda d: d["metadata"]["name"])
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    # every replica serves the admission webhook, with the certificate the chart made
    assert hook_svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert hook_svc["spec"]["ports"][0]["targetPort"] == "webhook"
    assert "--webhook-port=9443" in container["args"]
    assert "--webhook-cert-dir=/etc/kubetune/webhook" in container["args"]
    (config,) = by_kind(docs, "ValidatingWebhookConfiguration")
    (hook,) = config["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["clientConfig"]["service"] == {
        "name": hook_svc["metadata"]["name"],
        "namespace": "kubetune",
        "path": "/validate",
        "port": 443,
    }
    (secret,) = by_kind(docs, "Secret")
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert hook["rules"][0]["resources"] == ["finetunejobs", "modeldeployments"]
    assert "namespaceSelector" not in hook  # cluster-wide


def test_values_reach_the_operator_environment(helm: str) -> None:
    docs = render(
        helm,
        "kt",
        "ops",
        "registry.default=oci://registry.example.com/ml",
        "registry.insecureHosts={registry.ml.svc:5000,10.0.0.7:5000}",
        "prometheus.url=http://prometheus.monitoring:9090",
        "cache.claimName=model-cache",
        "trainerImage.tag=dev",
        "image.tag=1.2.3",
        "replicaCount=1",
        "leaderElection.enabled=false",
    )
    (dep,) = by_kind(docs, "Deployment")
    env = env_of(dep)
    assert env["KUBETUNE_REGISTRY"] == "oci://registry.example.com/ml"
    assert env["KUBETUNE_REGISTRY_INSECURE"] == "registry.ml.svc:5000,10.0.0.7:5000"
    assert env["KUBETUNE_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"
    assert env["KUBETUNE_CACHE_CLAIM"] == "model-cache"
    assert env["KUBETUNE_TRAINER_IMAGE"] == "ghcr.io/kubetune/trainer:dev"
    assert env["KUBETUNE_IMAGE"] == "ghcr.io/kubetune/kubetune:1.2.3"  # follows the operator image
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--leader-elect" not in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # no standbys to wait
    assert not [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("leader-election")]


def test_namespaced_mode_grants_roles_only_in_the_watched_namespaces(helm: str) -> None:
    docs = render(helm, "kt", "ops", "watchNamespaces={ml,research}")
    (dep,) = by_kind(docs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=ml", "--namespace=research"]
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_kind(docs, "Role")}
    assert roles == {
        ("ml", "kt-kubetune"),
        ("research", "kt-kubetune"),
        ("ops", "kt-kubetune-leader-election"),
    }
    # kopf's read-only one, and the admission webhook's right to ask SubjectAccessReviews
    admission, cluster_role = sorted(by_kind(docs, "ClusterRole"), key=lambda d: d["metadata"]["name"])
    assert cluster_role["metadata"]["name"] == "kt-kubetune-kopf"
    resources = {res for rule in cluster_role["rules"] for res in rule["resources"]}
    assert resources == {"customresourcedefinitions", "namespaces"}
    assert {v for rule in cluster_role["rules"] for v in rule["verbs"]} == {"list", "watch"}
    assert admission["rules"] == [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}
    ]


def test_admission_values_set_the_failure_policy_scope_and_cert_manager(helm: str) -> None:
    docs = render(helm, "kt", "ops", "admission.failurePolicy=Ignore", "watchNamespaces={ml}")
    (config,) = by_kind(docs, "ValidatingWebhookConfiguration")
    (hook,) = config["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ml"]}
    ]
    docs = render(
        helm,
        "kt",
        "ops",
        "admission.certManager.enabled=true",
        "admission.certManager.issuerRef.name=platform-ca",
        "admission.certManager.issuerRef.kind=ClusterIssuer",
    )
    assert not by_kind(docs, "Secret")
    (cert,) = by_kind(docs, "Certificate")
    assert cert["spec"]["secretName"] == "kt-kubetune-webhook-tls"
    assert "kt-kubetune-webhook.ops.svc" in cert["spec"]["dnsNames"]
    (config,) = by_kind(docs, "ValidatingWebhookConfiguration")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "ops/kt-kubetune-webhook"
    assert "caBundle" not in config["webhooks"][0]["clientConfig"]
    docs = render(helm, "kt", "ops", "admission.enabled=false")
    assert not by_kind(docs, "ValidatingWebhookConfiguration")
    (dep,) = by_kind(docs, "Deployment")
    assert not any(
        a.startswith("--webhook") for a in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    result = run_helm(helm, "template", "kt", str(CHART), "--set", "admission.failurePolicy=Sometimes")
    # the values schema refuses it first, with Helm's own message naming the field
    assert result.returncode != 0 and "/admission/failurePolicy" in result.stderr, result.stderr
    assert "'Fail', 'Ignore'" in result.stderr


def test_service_monitor_is_off_by_default_and_selects_the_metrics_service(helm: str) -> None:
    assert not by_kind(render(helm, "kt", "ops"), "ServiceMonitor")
    docs = render(helm, "kt", "ops", "serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom")
    (monitor,) = by_kind(docs, "ServiceMonitor")
    (svc,) = [d for d in by_kind(docs, "Service") if d["metadata"]["name"].endswith("-metrics")]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]


def test_two_replicas_without_leader_election_are_refused(helm: str) -> None:
    result = run_helm(helm, "template", "kt", str(CHART), "--set", "leaderElection.enabled=false")
    assert result.returncode != 0
    assert "needs leaderElection.enabled=true" in result.stderr


@pytest.mark.parametrize(
    "values",
    [
        ("leaderElection.renewDeadline=15",),
        ("leaderElection.leaseDuration=8",),
        ("leaderElection.retryPeriod=10",),
    ],
)
def test_lease_timings_that_could_let_two_replicas_lead_are_refused(
    helm: str, values: tuple[str, ...]
) -> None:
    args = ["template", "kt", str(CHART)]
    for value in values:
        args += ["--set", value]
    result = run_helm(helm, *args)
    assert result.returncode != 0
    assert "retryPeriod < renewDeadline < leaseDuration" in result.stderr


# --- the API server's view --------------------------------------------------------------------


def apply(kube: Kube, docs: list[Obj], *, dry_run_kinds: tuple[str, ...] = ()) -> list[str]:
    """Create every document (server-side dry run for ``dry_run_kinds``); kinds with no CRD in
    the cluster (ServiceMonitor) are skipped and named in the result."""
    skipped = []
    for doc in docs:
        try:
            path = kube.path_of(doc, collection=True)
        except LookupError:
            skipped.append(doc["kind"])
            continue
        except ApiException as exc:
            if exc.status != 404:  # an API group the server does not serve at all
                raise
            skipped.append(doc["kind"])
            continue
        if doc["kind"] in dry_run_kinds:
            kube.create(path, doc, dryRun="All")
        else:
            kube.create(path, doc)
    return skipped


def delete_cluster_scoped(kube: Kube, docs: list[Obj]) -> None:
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            kube.delete(kube.path_of(doc))


def can(
    kube: Kube,
    sa: tuple[str, str],
    verb: str,
    resource: str,
    group: str = "",
    sub: str = "",
    namespace: str = "",
    name: str = "",
) -> bool:
    sa_ns, sa_name = sa
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{sa_ns}:{sa_name}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}", "system:authenticated"],
            "resourceAttributes": {
                "namespace": namespace,
                "group": group,
                "resource": resource,
                "subresource": sub,
                "verb": verb,
                "name": name,
            },
        },
    }
    out = kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
    return bool(out["status"]["allowed"])


# (verb, group, resource, subresource) the controllers and kopf use in a watched namespace
NEEDED = [
    ("get", "kubetune.io", "finetunejobs", ""),
    ("watch", "kubetune.io", "finetunejobs", ""),
    ("patch", "kubetune.io", "finetunejobs", ""),  # kopf's progress annotations and finalizer
    ("patch", "kubetune.io", "finetunejobs", "status"),
    ("update", "kubetune.io", "finetunejobs", "finalizers"),  # children's blockOwnerDeletion
    ("create", "kubetune.io", "adapters", ""),
    ("watch", "kubetune.io", "adapters", ""),
    ("patch", "kubetune.io", "adapters", "status"),
    ("list", "kubetune.io", "modeldeployments", ""),
    ("patch", "kubetune.io", "modeldeployments", ""),  # clearing the promote/abort annotations
    ("patch", "kubetune.io", "modeldeployments", "status"),
    ("create", "batch", "jobs", ""),
    ("patch", "batch", "jobs", ""),  # suspend / resume
    ("delete", "batch", "jobs", ""),
    ("watch", "batch", "jobs", ""),
    ("create", "apps", "deployments", ""),
    ("patch", "apps", "deployments", ""),
    ("delete", "apps", "deployments", ""),
    ("watch", "apps", "deployments", ""),
    ("list", "", "pods", ""),
    ("watch", "", "pods", ""),
    ("get", "", "pods", "log"),
    ("create", "", "configmaps", ""),
    ("create", "", "serviceaccounts", ""),
    ("create", "", "services", ""),
    ("patch", "", "services", ""),
    ("create", "rbac.authorization.k8s.io", "roles", ""),
    ("create", "rbac.authorization.k8s.io", "rolebindings", ""),
    ("create", "", "events", ""),
    ("create", "gateway.networking.k8s.io", "httproutes", ""),
    ("patch", "gateway.networking.k8s.io", "httproutes", ""),
]
# ... and what it must not do there
FORBIDDEN = [
    ("get", "", "secrets", ""),
    ("list", "", "secrets", ""),
    ("create", "", "pods", ""),
    ("delete", "", "pods", ""),
    ("create", "", "pods", "exec"),
    ("delete", "kubetune.io", "finetunejobs", ""),
    ("delete", "kubetune.io", "adapters", ""),  # Adapters are immutable records
    ("patch", "kubetune.io", "adapters", ""),
    ("delete", "", "configmaps", ""),
    ("escalate", "rbac.authorization.k8s.io", "roles", ""),
    ("bind", "rbac.authorization.k8s.io", "roles", ""),
    ("get", "coordination.k8s.io", "leases", ""),  # its Lease lives in the release namespace only
    ("create", "", "persistentvolumeclaims", ""),
]
CLUSTER_FORBIDDEN = [
    ("list", "", "secrets", ""),
    ("get", "", "nodes", ""),
    ("create", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", ""),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", ""),
    ("delete", "", "namespaces", ""),
]


# what the tests that do not run the operator only validate (dry run)
NOT_STARTED = ("Deployment", "ValidatingWebhookConfiguration")


def denials(
    kube: Kube, sa: tuple[str, str], checks: list[tuple[str, str, str, str]], namespace: str
) -> list[str]:
    return [
        f"{verb} {group}/{resource}{'/' + sub if sub else ''} in {namespace or 'all namespaces'}"
        for verb, group, resource, sub in checks
        if not can(kube, sa, verb, resource, group, sub, namespace)
    ]


def grants(
    kube: Kube, sa: tuple[str, str], checks: list[tuple[str, str, str, str]], namespace: str
) -> list[str]:
    return [
        f"{verb} {group}/{resource}{'/' + sub if sub else ''} in {namespace or 'all namespaces'}"
        for verb, group, resource, sub in checks
        if can(kube, sa, verb, resource, group, sub, namespace)
    ]


@pytest.fixture
def release(cluster: Cluster, kube: Kube) -> Iterator[tuple[str, str]]:
    """A unique (release name, release namespace); cluster-scoped leftovers removed after."""
    name = f"kt-{uuid.uuid4().hex[:6]}"
    ns = cluster.create_namespace(f"{name}-system")
    yield name, ns
    for plural in ("clusterroles", "clusterrolebindings"):
        for suffix in ("", "-kopf", "-admission"):
            kube.delete(f"/apis/rbac.authorization.k8s.io/v1/{plural}/{name}-kubetune{suffix}")
    kube.delete(f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}-kubetune")
    kube.delete(f"/api/v1/namespaces/{ns}")


def test_cluster_wide_install_is_accepted_and_grants_exactly_what_the_code_uses(
    helm: str, kube: Kube, release: tuple[str, str]
) -> None:
    name, ns = release
    docs = render(helm, name, ns, "serviceMonitor.enabled=true")
    # The Deployment is validated (dry run) but not started here, so is the webhook configuration
    # (nothing would answer it); the last test runs both.
    skipped = apply(kube, docs, dry_run_kinds=NOT_STARTED)
    assert skipped == ["ServiceMonitor"]  # no Prometheus Operator CRDs in the test cluster
    sa = (ns, f"{name}-kubetune")
    assert kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa[1]}")
    assert denials(kube, sa, NEEDED, "team-a") == []
    assert denials(kube, sa, NEEDED, "") == []  # cluster-wide: watching every namespace
    admission_needs = [("create", "authorization.k8s.io", "subjectaccessreviews", "")]
    assert denials(kube, sa, admission_needs, "") == []
    kopf_needs = [
        ("list", "apiextensions.k8s.io", "customresourcedefinitions", ""),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions", ""),
        ("list", "", "namespaces", ""),
        ("watch", "", "namespaces", ""),
    ]
    assert denials(kube, sa, kopf_needs, "") == []
    assert grants(kube, sa, FORBIDDEN, "team-a") == []
    assert grants(kube, sa, CLUSTER_FORBIDDEN, "") == []
    # Leader election: create any Lease in its own namespace, but renew only its own.
    assert can(kube, sa, "create", "leases", "coordination.k8s.io", namespace=ns)
    for verb in ("get", "update", "patch"):
        assert can(kube, sa, verb, "leases", "coordination.k8s.io", namespace=ns, name=LEASE)
        assert not can(kube, sa, verb, "leases", "coordination.k8s.io", namespace=ns, name="someone-else")
        assert not can(kube, sa, verb, "leases", "coordination.k8s.io", namespace="kube-system", name=LEASE)


def test_namespaced_install_grants_nothing_outside_the_watched_namespaces(
    helm: str, cluster: Cluster, kube: Kube, release: tuple[str, str]
) -> None:
    name, ns = release
    watched = cluster.create_namespace(f"{name}-ml")
    try:
        docs = render(helm, name, ns, f"watchNamespaces={{{watched}}}")
        assert apply(kube, docs, dry_run_kinds=NOT_STARTED) == []
        sa = (ns, f"{name}-kubetune")
        assert denials(kube, sa, NEEDED, watched) == []
        assert grants(kube, sa, NEEDED, "elsewhere") == []
        assert grants(kube, sa, [(v, g, r, s) for v, g, r, s in NEEDED if v in ("list", "watch")], "") == []
        assert grants(kube, sa, FORBIDDEN, watched) == []
    finally:
        kube.delete(f"/api/v1/namespaces/{watched}")


def test_operator_service_account_creates_a_jobs_children_without_escalate_or_bind(
    helm: str, cluster: Cluster, kube: Kube, kubetune_crds: CrdReport, release: tuple[str, str]
) -> None:
    """Real requests with the chart ServiceAccount's token, the manifests from the builders:
    the API server's RBAC escalation check passes on the per-job Role because the operator
    holds every permission it grants."""
    assert not kubetune_crds.rejected, kubetune_crds.rejected
    name, ns = release
    apply(kube, render(helm, name, ns), dry_run_kinds=NOT_STARTED)
    team = cluster.create_namespace(f"{name}-team")
    try:
        stored = kube.create(FTJ.format(ns=team), finetunejob("probe"))
        job = FineTuneJob.model_validate(stored)
        token = kube.create(
            f"/api/v1/namespaces/{ns}/serviceaccounts/{name}-kubetune/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 600},
            },
        )["status"]["token"]
        as_operator = kubeclient.Kube.with_token(cluster.server, token, str(cluster.pki.ca_crt))
        try:
            for child in builders.children(job, Settings()):
                assert as_operator.create(child) is not None, child["kind"]
            as_operator.patch(FTJ.format(ns=team) + "/probe/status", {"status": {"phase": "Pending"}})
            as_operator.event(stored, "Normal", "ChartProbe", "created by the chart's ServiceAccount")
            lease = kubeclient.path("coordination.k8s.io/v1", "Lease", ns, LEASE)
            assert as_operator.create(
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": LEASE, "namespace": ns},
                }
            )
            assert as_operator.patch(lease, {"spec": {"holderIdentity": "probe"}})
            with pytest.raises(kubeclient.ApiError) as denied:
                as_operator.get(f"/api/v1/namespaces/{team}/secrets")
            assert denied.value.status == 403
        finally:
            as_operator.close()
        role = kube.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{team}/roles/probe-trainer")
        assert role["rules"] == builders.role(job)["rules"]
        assert kube.get(f"/apis/batch/v1/namespaces/{team}/jobs/{builders.names(job)['preflight']}")
    finally:
        kube.delete(f"/api/v1/namespaces/{team}")


def finetunejob(name: str) -> Obj:
    """A FineTuneJob whose data never arrives (no PVC): the operator creates its children and
    the preflight pod waits for a claim that does not exist; nothing trains."""
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "dataset": {"uri": "pvc://data/train.jsonl", "format": "instruction"},
            "method": {"type": "lora", "lora": {"r": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj"]}},
            "resources": {"gpusPerNode": 0},
        },
    }


def test_installed_chart_runs_the_operator_that_reconciles_with_its_own_service_account(
    helm: str, cluster: Cluster, kube: Kube, kubetune_crds: CrdReport, release: tuple[str, str]
) -> None:
    """The Deployment the chart renders runs as pods of the test cluster (the node agent maps
    ghcr.io/kubetune/kubetune to this checkout's ``kubetune``), with in-cluster credentials of
    the chart's ServiceAccount: one replica leads, and it turns a FineTuneJob into children."""
    assert not kubetune_crds.rejected, kubetune_crds.rejected
    name, ns = release
    watched = cluster.create_namespace(f"{name}-ml")
    # a registry prefix, else the job fails at once with NoRegistry and makes no children
    docs = render(
        helm,
        name,
        ns,
        f"watchNamespaces={{{watched}}}",
        "resyncSeconds=1",
        "registry.default=oci://registry.example.com/ml",
    )
    try:
        assert apply(kube, docs) == []
        selector = f"app.kubernetes.io/instance={name}"

        def ready_pods() -> list[Obj] | None:
            pods = kube.pods(ns, selector)
            ready = [
                p
                for p in pods
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions") or []
                )
            ]
            return ready if len(ready) == 2 else None

        pods = wait_or_logs(cluster, ns, selector, ready_pods, 120, "both operator replicas Ready")
        lease = wait_for(
            lambda: (
                (kube.get_or_none(f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{LEASE}") or {})
                .get("spec", {})
                .get("holderIdentity")
            ),
            60,
            "a leader",
        )
        assert any(str(lease).startswith(p["metadata"]["name"]) for p in pods), (lease, pods)

        chart_job = FineTuneJob.model_validate(kube.create(FTJ.format(ns=watched), finetunejob("chart")))
        want = {
            f"/api/v1/namespaces/{watched}/configmaps/chart-spec",
            f"/api/v1/namespaces/{watched}/serviceaccounts/chart-trainer",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{watched}/roles/chart-trainer",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{watched}/rolebindings/chart-trainer",
            f"/apis/batch/v1/namespaces/{watched}/jobs/{builders.names(chart_job)['preflight']}",
        }
        wait_or_logs(
            cluster,
            ns,
            selector,
            lambda: all(kube.get_or_none(p) for p in want),
            90,
            "the FineTuneJob's children, created by the installed operator",
        )
        status = wait_for(
            lambda: kube.get(FTJ.format(ns=watched) + "/chart").get("status"), 60, "FineTuneJob status"
        )
        assert status.get("phase"), status
        # The chart's webhook answers (through its Service, with the chart's certificate): a job
        # the operator would refuse is refused at apply time with kubetune validate's message.
        bad = finetunejob("gate")
        bad["spec"]["evaluation"] = {"metrics": ["loss"], "gate": {"metric": "rougeL"}}
        with pytest.raises(ApiException) as refused:
            kube.create(FTJ.format(ns=watched), bad)
        assert refused.value.status == 403, refused.value.body
        assert "spec.evaluation.gate.metric is 'rougeL'" in str(refused.value.body)
        # a reference is checked with a SubjectAccessReview under the chart's RBAC: the admin may
        # read any Secret, so this is admitted (without the right to ask, it would be refused)
        referencing = finetunejob("referencing")
        referencing["spec"]["baseModel"]["secretRef"] = {"name": "hf"}
        kube.create(FTJ.format(ns=watched), referencing)
        logs = operator_logs(cluster, ns, selector)
        assert "Forbidden" not in logs and " 403" not in logs, logs[-4000:]
    finally:
        kube.delete(f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}-kubetune")
        kube.delete(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}-kubetune")
        wait_for(lambda: not kube.pods(ns, f"app.kubernetes.io/instance={name}"), 90, "operator pods gone")
        kube.delete(f"/api/v1/namespaces/{watched}")


def wait_or_logs(
    cluster: Cluster,
    namespace: str,
    selector: str,
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
) -> T:
    """:func:`wait_for`, failing with the operator pods' logs."""
    try:
        return wait_for(predicate, timeout, what)
    except WaitTimeout as exc:
        raise AssertionError(f"{exc}\n{operator_logs(cluster, namespace, selector)}") from None


def operator_logs(cluster: Cluster, namespace: str, selector: str) -> str:
    out = []
    for pod in cluster.kube.pods(namespace, selector):
        path = cluster.container_log(namespace, pod["metadata"]["name"], "operator")
        log = path.read_text()[-6000:] if path.exists() else "(no log file)"
        status = yaml.safe_dump(pod.get("status"), width=120)[-3000:]
        out.append(f"--- {pod['metadata']['name']}\n{status}\n{log}")
    return "\n".join(out)
