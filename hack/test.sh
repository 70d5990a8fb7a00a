#!/usr/bin/env bash
# Runs test levels with timing: `hack/test.sh all|unit|trainer|integration|e2e`.
# Every level that has tests runs; a level without test files yet is reported and skipped.
# Integration and e2e need real parts: the KUBETUNE_REQUIRE_* variables make a missing part a
# failure rather than a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export KUBETUNE_REQUIRE_CLUSTER=${KUBETUNE_REQUIRE_CLUSTER:-1}
export KUBETUNE_REQUIRE_REGISTRY=${KUBETUNE_REQUIRE_REGISTRY:-1}
export KUBETUNE_REQUIRE_PROMETHEUS=${KUBETUNE_REQUIRE_PROMETHEUS:-1}
export KUBETUNE_REQUIRE_HELM=${KUBETUNE_REQUIRE_HELM:-1}
export KUBETUNE_REQUIRE_BROWSER=${KUBETUNE_REQUIRE_BROWSER:-1}
export KUBETUNE_REQUIRE_VLLM=${KUBETUNE_REQUIRE_VLLM:-1}

levels=("$@")
[[ ${#levels[@]} == 0 || ${levels[0]} == all ]] && levels=(lint unit trainer integration e2e)

failed=()
summary=()
for level in "${levels[@]}"; do
  start=$(date +%s)
  if [[ $level == lint ]]; then
    echo "==> lint" >&2
    make --no-print-directory lint; rc=$?
  elif [[ -z "$(find "tests/$level" -name 'test_*.py' 2>/dev/null | head -1)" ]]; then
    echo "==> $level: no tests yet, skipped" >&2
    summary+=("$level: no tests")
    continue
  else
    echo "==> $level tests" >&2
    "$PY" -m pytest "tests/$level" -p no:cacheprovider; rc=$?
  fi
  took=$(( $(date +%s) - start ))
  summary+=("$level: rc=$rc in ${took}s")
  (( rc != 0 )) && failed+=("$level")
done

echo "==> test summary" >&2
for line in "${summary[@]}"; do echo "    $line" >&2; done
if (( ${#failed[@]} )); then
  echo "==> FAILED levels: ${failed[*]}" >&2
  exit 1
fi
