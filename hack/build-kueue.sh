#!/usr/bin/env bash
# Builds Kueue's controller-manager (sigs.k8s.io/kueue/cmd/kueue) from Go modules into a cache
# directory outside the repo, keyed by version, and copies the CRDs, RBAC and webhook manifests
# of the same module version next to it. The Kueue integration tests (tests/integration/queue)
# run this binary against the test control plane (kubetune.testing.kueue). Nothing is
# downloaded but Go modules; a second run with the same version is a no-op.
# Env:
#   KUEUE_VERSION   release (default 0.17.0)
#   KUBETUNE_CACHE  cache root (default ~/.cache/kubetune)
#   GO_BUILD_P      parallel compile jobs (default 2)
# Layout: $KUBETUNE_CACHE/kueue-v$VERSION/{bin/kueue,bin/VERSION,crd/*.yaml,rbac/*.yaml,webhook/*.yaml}
# Prints the install directory on its last line.
set -euo pipefail

VERSION=${KUEUE_VERSION:-0.17.0}
VERSION=${VERSION#v}
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
DEST="$CACHE/kueue-v$VERSION"
BIN="$DEST/bin"
WORK="$DEST/src"

log() { printf '{"ts":"%s","component":"build-kueue","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -x "$BIN/kueue" && "$(cat "$BIN/VERSION" 2>/dev/null)" == "$VERSION" && -f "$DEST/MANIFESTS" ]]; then
  log "cached: $DEST (kueue $VERSION)"
  echo "$DEST"; exit 0
fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$BIN" "$WORK"
start=$(date +%s)
log "building kueue v$VERSION"
cd "$WORK"
rm -f go.mod go.sum
go mod init local.test/kueuebin >/dev/null 2>&1
# the package path (not just the module) so that go.sum gets every module the binary imports
go get "sigs.k8s.io/kueue/cmd/kueue@v$VERSION"
MOD=$(go list -m -f '{{.Dir}}' "sigs.k8s.io/kueue")
# The manifests come from the very module version the binary is built from.
for d in crd rbac webhook; do rm -rf "${DEST:?}/$d"; mkdir -p "$DEST/$d"; done
cp "$MOD"/config/components/crd/bases/*.yaml "$DEST/crd/"
# the conversion-webhook patches that config/components/crd/kustomization.yaml enables
for patch in $(sed -n 's|^- path: patches/\(webhook_in_.*\.yaml\)$|\1|p' "$MOD/config/components/crd/kustomization.yaml"); do
  cp "$MOD/config/components/crd/patches/$patch" "$DEST/crd/"
done
cp "$MOD"/config/components/rbac/*.yaml "$DEST/rbac/"
cp "$MOD"/config/components/webhook/*.yaml "$DEST/webhook/"
cp "$MOD"/config/components/manager/controller_manager_config.yaml "$DEST/"
chmod -R u+w "$DEST/crd" "$DEST/rbac" "$DEST/webhook" "$DEST/controller_manager_config.yaml"
echo 2 > "$DEST/MANIFESTS"  # layout of the copied manifests; a change re-copies them
if [[ -x "$BIN/kueue" && "$(cat "$BIN/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
  log "manifests refreshed; binary cached: $DEST"; echo "$DEST"; exit 0
fi
LD="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=v$VERSION"
go build -p "${GO_BUILD_P:-2}" -ldflags "$LD" -o "$BIN/kueue.tmp" sigs.k8s.io/kueue/cmd/kueue
mv "$BIN/kueue.tmp" "$BIN/kueue"
echo "$VERSION" > "$BIN/VERSION"
log "done in $(( $(date +%s) - start ))s: $DEST"
echo "$DEST"
