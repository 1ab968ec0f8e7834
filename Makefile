# perfguard — the verbs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
include hack/test-servers/versions.env
TEST_SERVERS_DIR := $(CURDIR)/.cache/test-servers/k8s-$(KUBERNETES_VERSION)_helm-$(HELM_VERSION)_r$(BUILD_REVISION)
# The envtest convention: set KUBEBUILDER_ASSETS to use binaries from elsewhere.
export KUBEBUILDER_ASSETS ?= $(TEST_SERVERS_DIR)
PYTEST_ARGS ?=
# The operator image `make image` builds and `make kind-load` loads: perfguard:<the chart's
# appVersion>, the tag the chart deploys by default (docs/install.md, "A local cluster with kind").
CHART_APP_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/perfguard/Chart.yaml)
IMAGE ?= perfguard
IMAGE_TAG ?= $(CHART_APP_VERSION)
KIND_CLUSTER ?= perfguard

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) is required" >&2; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: setup
setup: $(VENV)/.installed ## Create the virtualenv and install perfguard (editable) with dev tools

.PHONY: test-servers
test-servers: ## Build kube-apiserver, etcd, kubectl and helm from Go modules (cached in .cache/)
	@bash hack/test-servers/build.sh $(TEST_SERVERS_DIR)

.PHONY: prometheus
prometheus: ## Install Debian's Prometheus (prometheus + promtool) if missing
	@bash hack/install-prometheus.sh

.PHONY: lint
lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy

.PHONY: crds
crds: setup ## Regenerate crds/ and the chart's CRDs (charts/perfguard/files/crds) from the pydantic models
	$(BIN)/perfguard crds

.PHONY: unit
unit: setup ## Pure unit tests (no servers)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: integration
integration: setup prometheus ## Tests against a real Prometheus with backfilled history
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

.PHONY: e2e
e2e: setup test-servers prometheus ## Tests against a real kube-apiserver + etcd (and kubectl, helm)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

.PHONY: test
test: setup test-servers prometheus lint ## Everything CI runs: lint, unit, integration, e2e
	$(BIN)/pytest tests $(PYTEST_ARGS)

.PHONY: demo
demo: setup test-servers prometheus ## Run the main job end to end on local data
	$(BIN)/python -m perfguard.local.demo

.PHONY: demo-stop
demo-stop: setup ## Stop the servers `make demo` left running
	$(BIN)/python -m perfguard.local.demo --stop

.PHONY: bench
bench: setup test-servers prometheus ## Run the benchmarks and write docs/benchmarks.md
	$(BIN)/python -m bench

.PHONY: image
image: ## Build the operator image perfguard:<chart appVersion> (needs Docker; IMAGE, IMAGE_TAG override)
	docker build -t $(IMAGE):$(IMAGE_TAG) .

.PHONY: kind-up
kind-up: ## Create the kind cluster from kind-config.yaml (needs Docker); the chart installs the CRDs
	kind create cluster --name $(KIND_CLUSTER) --config kind-config.yaml

.PHONY: kind-load
kind-load: ## Load the image `make image` built into the kind cluster's nodes
	kind load docker-image $(IMAGE):$(IMAGE_TAG) --name $(KIND_CLUSTER)

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

.PHONY: clean
clean: ## Remove the virtualenv, caches and demo state (keeps the built test servers)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .cache/demo
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
