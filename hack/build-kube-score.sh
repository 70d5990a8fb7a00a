#!/usr/bin/env bash
# Builds kube-score (github.com/zegl/kube-score), an independent Kubernetes manifest linter, from
# Go modules into a cache directory outside the repo, keyed by version. `make lint` runs it over
# the rendered chart and the golden manifests the operator builds (hack/kube-score.sh), so pods
# a governed cluster would refuse (no requests or limits, no securityContext, one probe for
# readiness and liveness) are caught before they ship. Nothing is downloaded but Go modules; a
# second run with the same version is a no-op.
# Env:
#   KUBE_SCORE_VERSION  release (default 1.20.0)
#   KUBETUNE_CACHE      cache root (default ~/.cache/kubetune)
#   GO_BUILD_P          parallel compile jobs (default 2)
# Prints the bin directory on its last line.
set -euo pipefail

VERSION=${KUBE_SCORE_VERSION:-1.20.0}
VERSION=${VERSION#v}
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
BIN="$CACHE/kube-score/$VERSION/bin"

log() { printf '{"ts":"%s","component":"build-kube-score","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -x "$BIN/kube-score" && "$(cat "$BIN/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
  log "cached: $BIN (kube-score $VERSION)"
  echo "$BIN"; exit 0
fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$BIN"
start=$(date +%s)
log "building kube-score v$VERSION"
# `go install pkg@version` resolves the module's own go.mod (its pinned dependencies), outside
# any module of ours; GOBIN is a temporary directory so a failed build leaves nothing behind.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install -p "${GO_BUILD_P:-2}" -ldflags "-s -w -X main.version=$VERSION" \
  "github.com/zegl/kube-score/cmd/kube-score@v$VERSION"
mv "$tmp/kube-score" "$BIN/kube-score"
echo "$VERSION" > "$BIN/VERSION"
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
