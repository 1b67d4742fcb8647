# job-template-run: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

CACHE_DIR ?= $(or $(JTR_CACHE_DIR),$(HOME)/.cache/job-template-run)
export JTR_CACHE_DIR := $(CACHE_DIR)

.PHONY: help build test unit e2e tools cluster-image crd docs chart-lint image push chart-package plugin-package demo bench bench-quick fmt lint clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the operator and the kubectl-jobrun plugin (debug)
	cargo build --bin job-template-run
	cargo build -p kubectl-jobrun

test: tools unit e2e ## Everything CI runs: installs tools, then unit + golden + chart tests, then the e2e suites

unit: ## Tier 1: unit tests, fixture goldens, CRD drift and Helm chart checks (no cluster; builds Helm once)
	HELM=$$(bash scripts/install-helm.sh) cargo test --workspace --exclude e2e
	cargo test -p e2e --lib

tools: ## Install or build what the tests need (Docker, Helm, krew, Python client), cached
	bash scripts/ensure-docker.sh
	bash scripts/install-helm.sh >/dev/null
	bash scripts/install-krew.sh >/dev/null
	bash scripts/install-python-client.sh >/dev/null

cluster-image: ## Build the e2e cluster image (real Kubernetes binaries from Go modules, cached)
	bash scripts/build-cluster-image.sh

e2e: cluster-image build image ## Tier 2: fixture replay, CRD validation, lifecycle, packaging, leader election, fault drills, callbacks and the kubectl-jobrun plugin against the cluster container
	HELM=$$(bash scripts/install-helm.sh) PYTHON=$$(bash scripts/install-python-client.sh) \
		cargo test -p e2e --test fixture_replay --test crd_validation --test lifecycle --test packaging --test leader_election --test drills --test callbacks --test plugin

crd: ## Regenerate the chart's CRDs from the Rust types
	cargo run -q --bin job-template-run -- crd --output-dir charts/job-template-run/crds

docs: ## Regenerate docs/merge-semantics.md and docs/api.md from the fixtures and the CRDs
	cargo run -q -p jtr-test-kit --bin docs -- --write

chart-lint: ## helm lint the chart with default and non-default values
	HELM=$$(bash scripts/install-helm.sh) cargo test --test helm_chart

image: ## Build the operator image hematoscope/job-template-run:<version> and :dev (the chart's image.repository; FROM scratch, static musl binary)
	bash scripts/build-image.sh

push: ## Tag and push the built image as $(REGISTRY)/job-template-run:<version> (REGISTRY=... required; DRY_RUN=1 prints the commands)
	@bash scripts/build-image.sh --push "$(REGISTRY)"

# Where the packaged chart is served: the Helm repo index.yaml names each
# chart by this URL (the project's GitHub Pages site). DIST is the folder.
CHART_REPO_URL ?= https://hematoscope.github.io/job-template-run
DIST ?= dist

chart-package: ## helm package the chart into dist/ and write the Helm repo index.yaml there (CHART_REPO_URL=..., DIST=...)
	@set -e; helm="$${HELM:-$$(bash scripts/install-helm.sh)}"; mkdir -p "$(DIST)"; \
		"$$helm" package charts/job-template-run --destination "$(DIST)"; \
		"$$helm" repo index "$(DIST)" --url "$(CHART_REPO_URL)"; \
		echo "$(DIST)/index.yaml lists: $$(cd "$(DIST)" && ls *.tgz | tr '\n' ' ')"

# The kubectl-jobrun plugin's krew package in DIST (default dist/): the
# archive of its two binaries (stripped: a no-op for the release profile's) and
# jobrun.yaml, plugins/jobrun.yaml with that archive's sha256. PLUGIN_BIN_DIR=DIR
# packages the binaries already built in DIR instead of building them with
# --release (plugin/tests/krew_manifest.rs packages its debug ones this way).
PLUGIN_BIN_DIR ?=

plugin-package: ## Build kubectl-jobrun (--release) and write its krew archive and manifest dist/jobrun.yaml (DIST=..., PLUGIN_BIN_DIR=... packs built binaries)
	@set -euo pipefail; dist="$(DIST)"; template=plugins/jobrun.yaml; \
		tag="v$$(sed -n 's/^version = "\(.*\)"$$/\1/p' plugin/Cargo.toml | head -n 1)"; \
		archive="kubectl-jobrun_$${tag}_linux_amd64.tar.gz"; \
		fail() { echo "make plugin-package: $$*" >&2; exit 1; }; \
		[[ "$$(uname -s)/$$(uname -m)" == Linux/x86_64 ]] || fail "the manifest lists linux/amd64 only; this is $$(uname -s)/$$(uname -m)"; \
		grep -qx "  version: $$tag" "$$template" || fail "$$template: spec.version is not $$tag (plugin/Cargo.toml)"; \
		grep -qF "/releases/download/$$tag/$$archive" "$$template" || fail "$$template: the uri does not name $$tag/$$archive"; \
		bin_dir="$(PLUGIN_BIN_DIR)"; \
		if [[ -z "$$bin_dir" ]]; then \
			cargo build --release -p kubectl-jobrun; bin_dir="$${CARGO_TARGET_DIR:-$(CURDIR)/target}/release"; \
		fi; \
		stage="$$(mktemp -d)"; trap 'rm -rf -- "$$stage"' EXIT; \
		for bin in kubectl-jobrun kubectl_complete-jobrun; do \
			strip -o "$$stage/$$bin" "$$bin_dir/$$bin"; chmod 0755 "$$stage/$$bin"; \
		done; \
		mkdir -p "$$dist"; \
		tar -C "$$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - \
			kubectl-jobrun kubectl_complete-jobrun | gzip -n > "$$dist/$$archive"; \
		sha="$$(sha256sum "$$dist/$$archive" | cut -d ' ' -f 1)"; \
		{ echo "# Written by make plugin-package from $$template: the sha256 of $$archive."; \
			sed -e '1,/^[^#]/{/^#/d}' -e "/^ *sha256: /s/SHA256-OF-THE-ARCHIVE/$$sha/" "$$template"; } > "$$dist/jobrun.yaml"; \
		! grep -q SHA256-OF-THE-ARCHIVE "$$dist/jobrun.yaml" || fail "$$dist/jobrun.yaml: the sha256 placeholder is left"; \
		echo "$$dist/jobrun.yaml: $$dist/$$archive, sha256 $$sha"

demo: ## Start a local cluster, run the operator on the seed's echo example, print the Job and the run's status
	bash scripts/demo.sh

BENCH_CRITERION := $(CURDIR)/bench/results/criterion

bench: cluster-image ## Benchmark P1-P8 against the API-server floor (extra: BENCH_ARGS="--operator-cmd LABEL=CMD"); writes bench/results/ and bench/latest.*
	cargo build --release --bin job-template-run
	rm -rf $(BENCH_CRITERION)
	CRITERION_HOME=$(BENCH_CRITERION) cargo bench -q --profile bench-tool -p bench --bench merge
	CRITERION_HOME=$(BENCH_CRITERION) cargo run -q --profile bench-tool -p bench -- --latest bench/latest $(BENCH_ARGS)

bench-quick: cluster-image ## What CI runs: P1, P2, P3, P5 in about two minutes; fails when a median's ratio to the floor or P5's count passes its gate (bench/README.md)
	cargo build --release --bin job-template-run
	cargo run -q --profile bench-tool -p bench -- --quick $(BENCH_ARGS)

fmt: ## Format the code
	cargo fmt --all

lint: ## Clippy with warnings denied
	cargo clippy --workspace --all-targets -- -D warnings

clean: ## Remove build outputs (the cached tools and cluster binaries stay)
	cargo clean
