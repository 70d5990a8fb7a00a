#!/usr/bin/env bash
# Builds prom-label-proxy (github.com/prometheus-community/prom-label-proxy) from Go modules into
# a cache directory outside the repo, keyed by version. It is what a platform puts in front of
# Prometheus so that a tenant's query only ever sees its own namespace's series; the tests run
# the real one in front of the test Prometheus (tests/integration/security). Nothing is
# downloaded but Go modules; a second run with the same version is a no-op.
# Env:
#   PROM_LABEL_PROXY_VERSION  release (default 0.11.1)
#   KUBETUNE_CACHE            cache root (default ~/.cache/kubetune)
#   GO_BUILD_P                parallel compile jobs (default 2)
# Prints the bin directory on its last line.
set -euo pipefail

VERSION=${PROM_LABEL_PROXY_VERSION:-0.11.1}
VERSION=${VERSION#v}
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
BIN="$CACHE/prom-label-proxy/$VERSION/bin"
WORK="$CACHE/prom-label-proxy/$VERSION/src"

log() { printf '{"ts":"%s","component":"build-prom-label-proxy","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -x "$BIN/prom-label-proxy" && "$(cat "$BIN/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
  log "cached: $BIN (prom-label-proxy $VERSION)"
  echo "$BIN"; exit 0
fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$BIN" "$WORK"
start=$(date +%s)
log "building prom-label-proxy v$VERSION"
cd "$WORK"
rm -f go.mod go.sum
go mod init local.test/plpbin >/dev/null 2>&1
go get "github.com/prometheus-community/prom-label-proxy@v$VERSION"
go build -p "${GO_BUILD_P:-2}" -ldflags "-s -w" -o "$BIN/prom-label-proxy.tmp" github.com/prometheus-community/prom-label-proxy
mv "$BIN/prom-label-proxy.tmp" "$BIN/prom-label-proxy"
echo "$VERSION" > "$BIN/VERSION"
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
