#!/usr/bin/env python3
"""kube-score over what kubetune puts on a cluster: the rendered chart and the operator's children.

`make lint` runs this. It scores, in one kube-score run (so that its NetworkPolicy and
PodDisruptionBudget checks see the objects that select each pod):

- the chart, rendered by `helm template` with the optional NetworkPolicies on for namespace
  `ml` (they are off by default because their peers are the platform's to name; rendered here
  so kube-score checks that they select the operator's pods), and
- the golden manifests under tests/unit/controllers/golden/, which the unit tests keep equal
  to what the FineTuneJob and ModelDeployment builders produce (namespace `ml`).

It fails on any CRITICAL finding that is neither in IGNORED_CHECKS nor in EXCEPTIONS below,
each with the reason the project accepts it. kube-score is built from Go modules by
hack/build-kube-score.sh; helm by hack/build-helm.sh. Without either this prints why and
passes, unless KUBETUNE_REQUIRE_KUBE_SCORE=1 (CI) makes that an error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune"))
VERSION = os.environ.get("KUBE_SCORE_VERSION", "1.20.0").removeprefix("v")
GOLDEN = REPO / "tests" / "unit" / "controllers" / "golden"
KUBERNETES_VERSION = "v1.27"  # the oldest the chart supports (Chart.yaml kubeVersion); kube-score: v1.18

# Checks the project does not follow, anywhere, and why.
IGNORED_CHECKS = {
    # Images are pinned by tag (the chart's appVersion, the spec's runtime.image) or by digest
    # (models and adapters are OCI artifacts pulled by the init containers, not images). The
    # pull policy is the platform's choice (chart values image.pullPolicy and
    # trainerImage.pullPolicy); Always adds a registry round trip to every start and fails a
    # GPU pod's restart while the registry is down.
    "container-image-pull-policy": "tag- or digest-pinned images; the pull policy is a chart value",
    # Models, datasets and checkpoints land in emptyDir volumes whose size follows the model
    # (tens of GB for a 7B base), which kubetune cannot know in advance; a fixed limit would
    # evict a training run hours in. A namespace whose quota covers ephemeral-storage gives
    # the pods a LimitRange default (docs/security.md).
    "container-ephemeral-storage-request-and-limit": "emptyDir size follows the model; LimitRange default",
    # kube-score wants UID/GID above 10000 to avoid colliding with a host user, which matters
    # for hostPath volumes; kubetune mounts none. The images' own user is 1000
    # (Dockerfile, trainer-image/Dockerfile); the restricted standard forbids only root.
    "container-security-context-user-group-id": "the images' user is 1000; no hostPath volumes",
}

# Findings accepted for one container only: (check id, container name) -> why.
EXCEPTIONS = {
    # TGI's launcher writes the shards' sockets and its caches under /tmp and ~; an emptyDir
    # over /tmp is not an option on every runtime (docs/modeldeployment.md). Every other
    # container kubetune runs has a read-only root file system.
    ("container-security-context-readonlyrootfilesystem", "tgi"): "TGI writes under /tmp",
    # vLLM, the same: its engine and API processes talk over ZMQ sockets under /tmp, and
    # torch.compile and vLLM keep caches under ~ (HOME is a volume, /tmp is not).
    ("container-security-context-readonlyrootfilesystem", "vllm"): "vLLM's IPC sockets under /tmp",
}


def _find(name: str, env: str) -> str | None:
    explicit = os.environ.get(env)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if name == "kube-score":
        built = CACHE / "kube-score" / VERSION / "bin" / "kube-score"
        return str(built) if os.access(built, os.X_OK) else shutil.which(name)
    builds = sorted((CACHE / name).glob("*/bin/" + name), key=lambda p: p.stat().st_mtime)
    return str(builds[-1]) if builds else shutil.which(name)


def _missing(what: str) -> int:
    message = f"kube-score lint: skipped, {what}"
    if os.environ.get("KUBETUNE_REQUIRE_KUBE_SCORE") == "1":
        print(message + " (KUBETUNE_REQUIRE_KUBE_SCORE=1 makes this an error)", file=sys.stderr)
        return 1
    print(message, file=sys.stderr)
    return 0


def _render_chart(helm: str, out: Path) -> None:
    env = {**os.environ, "HELM_CACHE_HOME": str(out / "helm-cache"), "HELM_CONFIG_HOME": str(out / "helm")}
    rendered = subprocess.run(
        [
            helm,
            "template",
            "kubetune",
            str(REPO / "charts" / "kubetune"),
            "--namespace",
            "kubetune-system",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.namespaces={ml}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if rendered.returncode != 0:
        raise SystemExit(f"kube-score lint: helm template failed:\n{rendered.stderr}")
    (out / "chart.yaml").write_text(rendered.stdout)


def _container(comment: dict[str, str]) -> str:
    """kube-score names the container in a comment's path (e.g. "tgi")."""
    return str(comment.get("path") or "")


def main() -> int:
    kube_score = _find("kube-score", "KUBETUNE_KUBE_SCORE")
    if kube_score is None:
        return _missing(f"no kube-score {VERSION} binary: run hack/build-kube-score.sh")
    helm = _find("helm", "KUBETUNE_HELM")
    if helm is None:
        return _missing("no helm binary to render the chart: run hack/build-helm.sh")
    with tempfile.TemporaryDirectory(prefix="kube-score-") as tmp:
        out = Path(tmp)
        _render_chart(helm, out)
        files = [str(out / "chart.yaml"), *sorted(str(p) for p in GOLDEN.glob("*.yaml"))]
        done = subprocess.run(
            [kube_score, "score", "-o", "json", "--kubernetes-version", KUBERNETES_VERSION, *files],
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        objects = json.loads(done.stdout)
    except ValueError:
        print(f"kube-score lint: kube-score failed:\n{done.stderr}{done.stdout[:2000]}", file=sys.stderr)
        return 1
    failures: list[str] = []
    accepted = 0
    for obj in objects:
        for check in obj.get("checks") or []:
            if check.get("skipped") or check.get("grade", 10) > 1:  # 1 = CRITICAL
                continue
            cid = check["check"]["id"]
            for comment in check.get("comments") or [{}]:
                if cid in IGNORED_CHECKS or (cid, _container(comment)) in EXCEPTIONS:
                    accepted += 1
                    continue
                where = f" ({_container(comment)})" if _container(comment) else ""
                failures.append(
                    f"CRITICAL {obj['object_name']}{where}: {cid}: {comment.get('summary', '')} "
                    f"{comment.get('description', '')}".rstrip()
                )
    for line in failures:
        print(line, file=sys.stderr)
    print(
        f"kube-score lint: {len(objects)} objects, {len(failures)} CRITICAL, "
        f"{accepted} accepted by the documented ignore list (hack/kube-score-lint.py)",
        file=sys.stderr,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
