#!/usr/bin/env bash
# kubetune's trainer vs transformers.Trainer + peft on the same model, data and hyperparameters
# (CPU, a few minutes). Prints the JSON report; record notable runs in RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1
exec .venv/bin/python benchmarks/trainer/bench.py --repeat "${REPEAT:-3}" "$@"
