#!/usr/bin/env bash
# Builds an upstream Prometheus with Kubernetes service discovery from Go modules into a cache
# directory outside the repo, keyed by version. Debian's prometheus package is built without
# Kubernetes SD (its NEWS: "Kubernetes support has been completely removed"), so tests that want
# `kubernetes_sd_configs` need this one; the others keep using /usr/bin/prometheus. Only the
# kubernetes discoverer is compiled in (build tags remove_all_sd,enable_kubernetes_sd), and
# the web UI is left out (the HTTP API is all tests use).
#
# Use it with KUBETUNE_PROMETHEUS_K8S=<printed dir>/prometheus (kubetune.testing.prometheus
# also finds it in the cache by itself). A second run with the same version is a no-op.
# Env:
#   PROMETHEUS_VERSION  Prometheus release (default 3.16.0; Go module v0.316.0)
#   KUBETUNE_CACHE      cache root (default ~/.cache/kubetune)
#   GO_BUILD_P          parallel compile jobs (default 2)
# Prints the bin directory on its last line.
set -euo pipefail

PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-3.16.0}
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
BIN="$CACHE/prometheus/$PROMETHEUS_VERSION/bin"
WORK="$CACHE/prometheus/$PROMETHEUS_VERSION/src"

log() { printf '{"ts":"%s","component":"build-prometheus","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -x "$BIN/prometheus" && "$(cat "$BIN/VERSION" 2>/dev/null)" == "$PROMETHEUS_VERSION" ]]; then
  log "cached: $BIN (prometheus $PROMETHEUS_VERSION)"
  echo "$BIN"; exit 0
fi

major=${PROMETHEUS_VERSION%%.*}
rest=${PROMETHEUS_VERSION#*.}
minor=${rest%%.*}
patch=${rest#*.}
MODVER=$(printf 'v0.%d%02d.%d' "$major" "$minor" "$patch")  # 3.16.0 -> v0.316.0

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$BIN" "$WORK"
start=$(date +%s)
log "building prometheus $PROMETHEUS_VERSION ($MODVER) with kubernetes SD only (cold: several minutes on 2 cores)"
cd "$WORK"
rm -f go.mod go.sum
go mod init local.test/prometheusbin >/dev/null 2>&1
go get "github.com/prometheus/prometheus/cmd/prometheus@$MODVER"
LD="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION -X github.com/prometheus/common/version.Branch=kubetune"
go build -p "${GO_BUILD_P:-2}" -tags remove_all_sd,enable_kubernetes_sd -ldflags "$LD" \
  -o "$BIN/prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus
mv "$BIN/prometheus.tmp" "$BIN/prometheus"
echo "$PROMETHEUS_VERSION" > "$BIN/VERSION"
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
