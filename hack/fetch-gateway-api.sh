#!/usr/bin/env bash
# Fetches the Gateway API CRDs (standard channel) from the Go module sigs.k8s.io/gateway-api
# into a cache directory outside the repo, keyed by version, for the integration tests that run
# ModelDeployments with HTTPRoute traffic routing against the test API server. Nothing is built
# and nothing is downloaded except through the Go module proxy. A second run is a no-op.
# Env:
#   GATEWAY_API_VERSION  release (default 1.6.3)
#   KUBETUNE_CACHE       cache root (default ~/.cache/kubetune)
# Prints the directory holding the CRD YAML files on its last line.
set -euo pipefail

VERSION=${GATEWAY_API_VERSION:-1.6.3}
VERSION=${VERSION#v}
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
OUT="$CACHE/gateway-api/$VERSION"

log() { printf '{"ts":"%s","component":"fetch-gateway-api","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -f "$OUT/VERSION" && "$(cat "$OUT/VERSION")" == "$VERSION" ]]; then
  log "cached: $OUT (gateway-api $VERSION)"
  echo "$OUT"; exit 0
fi

export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod
start=$(date +%s)
log "fetching sigs.k8s.io/gateway-api@v$VERSION from the Go module proxy"
dir=$(cd /tmp && go mod download -json "sigs.k8s.io/gateway-api@v$VERSION" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])')
mkdir -p "$OUT.tmp"
cp "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$OUT.tmp/"
chmod u+w "$OUT.tmp"/*.yaml
echo "$VERSION" > "$OUT.tmp/VERSION"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "fetched $(ls "$OUT"/*.yaml | wc -l) CRDs in $(( $(date +%s) - start ))s"
echo "$OUT"
