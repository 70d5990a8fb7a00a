#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd) from Go modules into a cache directory outside the repo, keyed by version.
# A second run with the same versions is a no-op. Binaries are never written into the repo.
#
# Env:
#   K8S_VERSION      Kubernetes release to build (default 1.37.2)
#   ETCD_VERSION     etcd release to build (default 3.6.16)
#   KUBETUNE_CACHE   cache root (default ~/.cache/kubetune)
#   KUBEBUILDER_ASSETS  if it holds all five binaries, use those and build nothing (envtest's
#                    usual directory has only kube-apiserver, etcd and kubectl: not enough here,
#                    the tests also need kube-controller-manager and kube-scheduler)
# Prints the bin directory on its last line.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
KEY="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
BIN="$CACHE/control-plane/$KEY/bin"
WORK="$CACHE/control-plane/$KEY/src"

log() { printf '{"ts":"%s","component":"build-control-plane","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  ok=1
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd kubectl; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || ok=0
  done
  if [[ $ok == 1 ]]; then
    log "using binaries from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    echo "$KUBEBUILDER_ASSETS"; exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kubectl; building instead"
fi

want="k8s=$K8S_VERSION etcd=$ETCD_VERSION"
if [[ -f "$BIN/VERSION" && "$(cat "$BIN/VERSION")" == "$want" ]]; then
  log "cached: $BIN ($want)"
  echo "$BIN"; exit 0
fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$BIN" "$WORK/k8s" "$WORK/etcd"
start=$(date +%s)

# --- etcd: a wrapper module calling etcdmain.Main (server/v3 has replaces, so no go install)
if [[ ! -x "$BIN/etcd" || "$(cat "$BIN/.etcd-version" 2>/dev/null)" != "$ETCD_VERSION" ]]; then
  log "building etcd v$ETCD_VERSION"
  cd "$WORK/etcd"
  rm -f go.mod go.sum
  go mod init local.test/etcdbin >/dev/null 2>&1
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go mod tidy
  go build -ldflags "-s -w" -o "$BIN/etcd.tmp" .
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  echo "$ETCD_VERSION" > "$BIN/.etcd-version"
  log "etcd built in $(( $(date +%s) - start ))s"
fi

# --- Kubernetes: a consumer module that replaces every staging module with its v0.x release
if [[ "$(cat "$BIN/.k8s-version" 2>/dev/null)" != "$K8S_VERSION" ]]; then
  log "building kubernetes v$K8S_VERSION (cold: tens of minutes on 2 cores)"
  kstart=$(date +%s)
  cd "$WORK/k8s"
  rm -f go.mod go.sum
  go mod init local.test/k8sbins >/dev/null 2>&1
  SV="v0.${K8S_VERSION#1.}"
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  for m in $(grep -oE 'k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | cut -d' ' -f1 | sort -u); do
    go mod edit -replace="$m=$m@$SV"
  done
  grep '^godebug' "$gomod" >> go.mod || true
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION"
  MINOR=${K8S_VERSION#1.}; MINOR=${MINOR%%.*}
  LD="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD="$LD -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%FT%TZ)"
  done
  mkdir -p "$WORK/out"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    log "go build $cmd"
    go build -p "${GO_BUILD_P:-2}" -tags selinux,notest,grpcnotrace -ldflags "$LD" -o "$WORK/out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
  mv "$WORK/out/"* "$BIN/"
  echo "$K8S_VERSION" > "$BIN/.k8s-version"
  log "kubernetes built in $(( $(date +%s) - kstart ))s"
fi

echo "$want" > "$BIN/VERSION"
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
