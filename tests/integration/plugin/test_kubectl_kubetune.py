"""``kubectl kubetune`` through kubectl's own plugin mechanism, against the real API server.

The real ``kubectl`` of the test control plane finds ``kubectl-kubetune`` (installed with the
package, in this virtualenv's bin/) on PATH. No operator runs: the objects and their status are
written here, so each verb is checked against exactly what it must read or change, and every
change is compared with what ``kubectl`` itself does for the printed ``--dry-run`` command.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kubetune.testing import Cluster
from kubetune.testing.binaries import Binaries
from kubetune.testing.kube import Kube

BASE = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/{plural}"
FIELD_MANAGER = "kubectl-kubetune"


@pytest.fixture
def kubectl(binaries: Binaries, cluster: Cluster, namespace: str, kubetune_crds: Any) -> Any:
    """Run ``kubectl ARGS`` in the test namespace with this virtualenv's bin/ first on PATH."""
    assert "finetunejobs.kubetune.io" in kubetune_crds.installed
    plugin = Path(sys.executable).parent / "kubectl-kubetune"
    assert plugin.is_file(), (
        "kubectl-kubetune is not installed: pip install -e . (it is a [project.scripts] entry)"
    )
    env = {
        **os.environ,
        "PATH": f"{plugin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(cluster.kubeconfig),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(binaries.kubectl), *args, "-n", namespace],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert proc.returncode == 0, f"kubectl {shlex.join(args)}: {proc.stderr}"
        return proc

    return run


def _ftj(kube: Kube, ns: str, name: str, status: dict[str, Any] | None = None) -> None:
    kube.create(
        BASE.format(ns=ns, plural="finetunejobs"),
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": name},
            "spec": {
                "baseModel": {"uri": "pvc://data/model"},
                "dataset": {"uri": "pvc://data/train.jsonl"},
                "resources": {"gpusPerNode": 0},
            },
        },
    )
    if status:
        kube.patch(BASE.format(ns=ns, plural="finetunejobs") + f"/{name}/status", {"status": status})


def _adapter(kube: Kube, ns: str, name: str, *, seed: int, r: int, loss: float) -> None:
    kube.create(
        BASE.format(ns=ns, plural="adapters"),
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "Adapter",
            "metadata": {"name": name},
            "spec": {
                "ref": f"oci://registry.example/adapters/{name}@sha256:{'ab' * 32}",
                "baseModel": {"uri": "pvc://data/model"},
                "method": "lora",
                "methodConfig": {"r": r, "alpha": 16},
                "hyperparameters": {"epochs": 2, "learningRate": 0.0002},
                "dataset": {"uri": "pvc://data/train.jsonl", "sha256": "0" * 64},
                "seed": seed,
                "scorecard": {
                    "primaryMetric": "loss",
                    "primaryValue": loss,
                    "gatePassed": True,
                    "metrics": [{"name": "loss", "base": 3.0, "tuned": loss, "delta": loss - 3.0}],
                },
                "sourceJob": {"name": f"{name}-job", "namespace": ns},
            },
        },
    )


def _mdep(kube: Kube, ns: str, name: str) -> None:
    kube.create(
        BASE.format(ns=ns, plural="modeldeployments"),
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "baseModel": {"uri": "pvc://data/model"},
                "adapters": [{"name": "support", "adapter": "support-v1"}],
                "rollout": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]},
            },
        },
    )
    kube.patch(
        BASE.format(ns=ns, plural="modeldeployments") + f"/{name}/status",
        {
            "status": {
                "phase": "Progressing",
                "stableRevision": "aaaa1111",
                "canaryRevision": "bbbb2222",
                "canaryWeight": 20,
                "currentStep": 1,
            }
        },
    )


def _managers(obj: dict[str, Any]) -> set[str]:
    return {m.get("manager") for m in obj["metadata"].get("managedFields") or []}


def test_status_of_each_kind_prints_the_story_through_kubectl(
    kubectl: Any, kube: Kube, namespace: str
) -> None:
    _ftj(
        kube,
        namespace,
        "support",
        {
            "phase": "Training",
            "progress": {
                "step": 12,
                "totalSteps": 48,
                "summary": "12/48 (25%)",
                "loss": 1.75,
                "epoch": 0.5,
                "lossHistory": [3.0, 2.5, 2.0, 1.75],
            },
            "metrics": [{"name": "loss", "base": 3.0, "tuned": 1.5, "delta": -1.5}],
        },
    )
    _adapter(kube, namespace, "support-v1", seed=42, r=8, loss=1.5)
    _mdep(kube, namespace, "chat")

    ftj = kubectl("kubetune", "status", "ftj", "support").stdout
    assert f"FineTuneJob {namespace}/support" in ftj and "Phase:       Training" in ftj
    assert "12/48 (25%)" in ftj and "loss 1.75" in ftj
    assert "  Loss:        █▅▂▁  3 -> 1.75" in ftj
    adp = kubectl("kubetune", "status", "adp", "support-v1").stdout
    assert "State:       candidate" in adp and "Scorecard:   loss = 1.5   gate passed" in adp
    mdep = kubectl("kubetune", "status", "mdep", "chat").stdout
    assert "Canary:      bbbb2222   weight 20%   step 2/3" in mdep
    assert '"phase": "Training"' in kubectl("kubetune", "status", "ftj", "support", "-o", "json").stdout

    # --context as kubectl's own: the current one works, an unknown one is one line
    current = kubectl("config", "current-context").stdout.strip()
    assert "Phase:" in kubectl("kubetune", "status", "ftj", "support", "--context", current).stdout
    wrong = kubectl("kubetune", "status", "ftj", "support", "--context", "no-such-context", check=False)
    assert (
        wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1 and "--context" in wrong.stderr
    )


def test_missing_object_is_one_line_naming_what_to_do(
    kubectl: Any, kubetune_crds: Any, namespace: str
) -> None:
    proc = kubectl("kubetune", "status", "mdep", "nope", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: ModelDeployment {namespace}/nope not found; list them with: kubectl get modeldeployments -n {namespace}"
    ]
    assert kubectl("kubetune", "promote", "nope", check=False).returncode == 1


def test_suspend_and_resume_set_spec_suspend_as_their_own_field_manager(
    kubectl: Any, kube: Kube, namespace: str
) -> None:
    _ftj(kube, namespace, "support")
    url = BASE.format(ns=namespace, plural="finetunejobs") + "/support"
    assert "suspend requested" in kubectl("kubetune", "suspend", "support").stdout
    obj = kube.get(url)
    assert obj["spec"]["suspend"] is True and FIELD_MANAGER in _managers(obj)
    kubectl("kubetune", "resume", "support")
    assert kube.get(url)["spec"]["suspend"] is False


def test_promote_and_abort_set_the_annotations_kubectl_would(
    kubectl: Any, kube: Kube, namespace: str
) -> None:
    _mdep(kube, namespace, "chat")
    url = BASE.format(ns=namespace, plural="modeldeployments") + "/chat"
    kubectl("kubetune", "promote", "chat")
    obj = kube.get(url)
    assert obj["metadata"]["annotations"]["kubetune.io/promote"] == "true" and FIELD_MANAGER in _managers(obj)
    kubectl("kubetune", "abort", "chat")
    assert kube.get(url)["metadata"]["annotations"]["kubetune.io/abort"] == "true"

    # --dry-run changes nothing and prints a kubectl command that makes the change by hand
    printed = kubectl("kubetune", "promote", "chat", "--full", "--dry-run").stdout.strip()
    assert kube.get(url)["metadata"]["annotations"]["kubetune.io/promote"] == "true"
    words = shlex.split(printed)
    assert words[:2] == ["kubectl", "patch"]
    kubectl(*words[1:])
    assert kube.get(url)["metadata"]["annotations"]["kubetune.io/promote"] == "full"


def test_pause_explains_that_the_api_has_no_pause_and_changes_nothing(
    kubectl: Any, kube: Kube, namespace: str
) -> None:
    _mdep(kube, namespace, "chat")
    before = kube.get(BASE.format(ns=namespace, plural="modeldeployments") + "/chat")
    proc = kubectl("kubetune", "pause", "chat", check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "kubectl kubetune promote chat" in proc.stderr
    after = kube.get(BASE.format(ns=namespace, plural="modeldeployments") + "/chat")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_diff_shows_differing_lineage_and_scorecards(kubectl: Any, kube: Kube, namespace: str) -> None:
    _adapter(kube, namespace, "support-v1", seed=42, r=8, loss=1.5)
    _adapter(kube, namespace, "support-v2", seed=7, r=16, loss=1.25)
    out = kubectl("kubetune", "diff", "support-v1", "support-v2").stdout
    lines = out.splitlines()
    assert lines[0] == "Adapters support-v1 (A) vs support-v2 (B)"
    assert any(line.split() == ["Seed", "42", "7"] for line in lines), out
    assert any(line.split() == ["lora.r", "8", "16"] for line in lines), out
    assert not any(line.split()[:1] == ["Method"] for line in lines), out  # identical rows are only counted
    assert any(line.split() == ["loss", "1.5", "1.25", "-0.25"] for line in lines), out


def _pod(kube: Kube, ns: str, name: str, job: str, component: str, index: int | None, text: str) -> None:
    labels = {"kubetune.io/finetunejob": job, "kubetune.io/component": component}
    if index is not None:
        labels["batch.kubernetes.io/job-completion-index"] = str(index)
    kube.create(
        f"/api/v1/namespaces/{ns}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": component, "image": "busybox:1.36", "command": ["sh", "-c", f"echo {text}"]}
                ],
            },
        },
    )


def test_logs_pick_rank_zero_by_default_and_the_rank_or_preflight_asked_for(
    kubectl: Any, kube: Kube, namespace: str
) -> None:
    _ftj(kube, namespace, "support")
    _pod(kube, namespace, "support-train-0-abcde", "support", "trainer", 0, "hello from rank 0")
    _pod(kube, namespace, "support-train-1-fghij", "support", "trainer", 1, "hello from rank 1")
    _pod(kube, namespace, "support-preflight-xyz", "support", "preflight", None, "preflight report")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        phases = {p["status"].get("phase") for p in kube.pods(namespace)}
        if phases == {"Succeeded"}:
            break
        time.sleep(0.5)
    assert phases == {"Succeeded"}, phases

    assert kubectl("kubetune", "logs", "support").stdout == "hello from rank 0\n"
    assert kubectl("kubetune", "logs", "support", "--rank", "1").stdout == "hello from rank 1\n"
    assert kubectl("kubetune", "logs", "support", "-f").stdout == "hello from rank 0\n"
    assert kubectl("kubetune", "logs", "support", "--preflight").stdout == "preflight report\n"
    missing = kubectl("kubetune", "logs", "support", "--rank", "2", check=False)
    assert missing.returncode == 1 and "has no pod of rank 2" in missing.stderr
