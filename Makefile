# kubetune developer tasks. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## install Debian packages, the .venv and the test control plane (idempotent)
	@hack/setup.sh

.PHONY: setup-python
setup-python: ## only the .venv (enough for local mode and the quickstart)
	@KUBETUNE_SKIP_APT=1 KUBETUNE_SKIP_CONTROL_PLANE=1 KUBETUNE_SKIP_PROMETHEUS_BUILD=1 KUBETUNE_SKIP_HELM_BUILD=1 KUBETUNE_SKIP_PROM_LABEL_PROXY_BUILD=1 KUBETUNE_SKIP_KUBE_SCORE_BUILD=1 KUBETUNE_SKIP_KSTATUS_BUILD=1 KUBETUNE_SKIP_KUEUE_BUILD=1 KUBETUNE_SKIP_VLLM=1 KUBETUNE_SKIP_BROWSER=1 hack/setup.sh

.PHONY: quickstart
quickstart: setup-python ## local LoRA fine-tune of a tiny demo model on CPU: dataset, model, kubetune run
	$(PY) docs/examples/quickstart/make_dataset.py
	HF_HUB_OFFLINE=1 $(PY) -m kubetune.trainer.tiny .kubetune/models/tiny-llama --data docs/examples/quickstart/train.jsonl --hidden 128
	HF_HUB_OFFLINE=1 .venv/bin/kubetune run docs/examples/quickstart/finetunejob.yaml --fresh

.PHONY: control-plane
control-plane: ## build (or reuse) kube-apiserver, controller-manager, scheduler, kubectl, etcd
	@hack/build-control-plane.sh

.PHONY: helm
helm: ## build (or reuse) the helm CLI the chart tests use (~/.cache/kubetune/helm)
	@hack/build-helm.sh

.PHONY: kube-score
kube-score: ## build (or reuse) the kube-score manifest linter make lint runs (~/.cache/kubetune/kube-score)
	@hack/build-kube-score.sh

.PHONY: generate
generate: ## regenerate crds/ and charts/kubetune/crds/ from the API models
	$(PY) -m kubetune.crdgen

.PHONY: check-generated
check-generated: ## fail if crds/ or charts/kubetune/crds/ drifted from the API models
	$(PY) -m kubetune.crdgen --check

.PHONY: lint
lint: ## ruff (lint + format check), mypy strict, import-linter contracts, generated files, kube-score
	$(PY) -m ruff check operator tests benchmarks
	$(PY) -m ruff format --check operator tests benchmarks
	$(PY) -m mypy
	.venv/bin/lint-imports
	$(PY) -m kubetune.crdgen --check
	$(PY) hack/kube-score-lint.py

.PHONY: test
test: setup ## run every test level (unit, trainer, integration, e2e) after setup
	@hack/test.sh all

.PHONY: test-unit
test-unit: ## pure unit tests (seconds)
	@hack/test.sh unit

.PHONY: test-trainer
test-trainer: ## CPU training tests on tiny models
	@hack/test.sh trainer

.PHONY: test-integration
test-integration: ## tests against the real control plane, registry and Prometheus
	@hack/test.sh integration

.PHONY: test-e2e
test-e2e: ## the whole loop on the local control plane
	@hack/test.sh e2e

.PHONY: cluster-up
cluster-up: ## start a local control plane with a GPU node agent; prints the kubeconfig path
	@hack/build-control-plane.sh >/dev/null && $(PY) -m kubetune.testing up

.PHONY: cluster-down
cluster-down: ## stop the local control plane started by cluster-up
	@$(PY) -m kubetune.testing down

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: images
images: ## build the kubetune (operator) and trainer container images; needs a Docker engine
	docker build -t ghcr.io/kubetune/kubetune:$(VERSION) .
	docker build -f trainer-image/Dockerfile -t ghcr.io/kubetune/trainer:$(VERSION) .

.PHONY: bench
bench: ## run the benchmarks in benchmarks/ and record their results
	@for b in benchmarks/*/run.sh; do [ -x "$$b" ] && "$$b"; done
