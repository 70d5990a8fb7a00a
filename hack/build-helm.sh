#!/usr/bin/env bash
# Builds the helm CLI (helm.sh/helm/v3) from Go modules into a cache directory outside the repo,
# keyed by version. Used by the chart tests (tests/integration/controlplane/test_helm_chart.py:
# `helm lint`, `helm template`); binaries are never written into the repo and none is
# downloaded: everything comes from the Go module proxy.
#
# Use it with KUBETUNE_HELM=<printed dir>/helm (the chart tests also find it in the cache by
# themselves). A second run with the same version is a no-op.
# Env:
#   HELM_VERSION    helm release (default 3.22.0; Go module helm.sh/helm/v3@v3.22.0)
#   KUBETUNE_CACHE  cache root (default ~/.cache/kubetune)
#   GO_BUILD_P      parallel compile jobs (default 2)
# Prints the bin directory on its last line.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-3.22.0}
HELM_VERSION=${HELM_VERSION#v}
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
BIN="$CACHE/helm/$HELM_VERSION/bin"
WORK="$CACHE/helm/$HELM_VERSION/src"

log() { printf '{"ts":"%s","component":"build-helm","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -x "$BIN/helm" && "$(cat "$BIN/VERSION" 2>/dev/null)" == "$HELM_VERSION" ]]; then
  log "cached: $BIN (helm $HELM_VERSION)"
  echo "$BIN"; exit 0
fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$BIN" "$WORK"
start=$(date +%s)
log "building helm v$HELM_VERSION (cold: a few minutes on 2 cores)"
cd "$WORK"
rm -f go.mod go.sum
go mod init local.test/helmbin >/dev/null 2>&1
go get "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
# What upstream's Makefile stamps: the version `helm version` prints, and the Kubernetes
# version `helm lint` / `helm template` assume for .Capabilities (from the client-go it uses).
KV=$(go list -m -f '{{.Version}}' k8s.io/client-go)  # v0.35.1 -> Kubernetes 1.35
KMINOR=${KV#v0.}; KMINOR=${KMINOR%%.*}
LD="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
LD="$LD -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$KMINOR"
LD="$LD -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$KMINOR"
go build -p "${GO_BUILD_P:-2}" -ldflags "$LD" -o "$BIN/helm.tmp" helm.sh/helm/v3/cmd/helm
mv "$BIN/helm.tmp" "$BIN/helm"
echo "$HELM_VERSION" > "$BIN/VERSION"
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
