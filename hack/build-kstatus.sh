#!/usr/bin/env bash
# Builds hack/kstatus, a small command around sigs.k8s.io/cli-utils' kstatus package (the rules
# Flux, kpt and cli-utils use to decide whether an applied object is InProgress, Current or
# Failed), into a cache directory outside the repo keyed by the cli-utils version and a hash of
# the program's sources. The GitOps tests (tests/integration/operator/test_gitops_*.py) pipe live kubetune objects
# through it. Nothing is downloaded but Go modules (pinned by hack/kstatus/go.sum); a second run
# with the same sources is a no-op.
# Env:
#   KUBETUNE_CACHE  cache root (default ~/.cache/kubetune)
#   GO_BUILD_P      parallel compile jobs (default 2)
# Prints the bin directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/kstatus"

VERSION=$(awk '$1 == "sigs.k8s.io/cli-utils" {print $2}' go.mod)
VERSION=${VERSION#v}
SRC_HASH=$(cat go.mod go.sum main.go | sha256sum | cut -c1-12)
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
BIN="$CACHE/kstatus/$VERSION-$SRC_HASH/bin"

log() { printf '{"ts":"%s","component":"build-kstatus","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -x "$BIN/kstatus" && "$(cat "$BIN/VERSION" 2>/dev/null)" == "$VERSION-$SRC_HASH" ]]; then
  log "cached: $BIN (cli-utils $VERSION)"
  echo "$BIN"; exit 0
fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly"
mkdir -p "$BIN"
start=$(date +%s)
log "building kstatus with sigs.k8s.io/cli-utils v$VERSION"
go build -p "${GO_BUILD_P:-2}" -ldflags "-s -w" -o "$BIN/kstatus.tmp" .
mv "$BIN/kstatus.tmp" "$BIN/kstatus"
echo "$VERSION-$SRC_HASH" > "$BIN/VERSION"
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
