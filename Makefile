# Two commands matter on a fresh machine: `make demo` and `make test`. Everything they need
# (a virtualenv with berth and its dev tools, the control-plane binaries) is built on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv binaries test lint typecheck unit e2e conformance faults demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

binaries:  ## etcd, kube-apiserver, kube-scheduler, kubectl, kwok -> ~/.cache/berth (no-op when built)
	hack/build.sh

lint: venv
	$(BIN)/ruff check scheduler plugins tests
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

e2e: venv binaries
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

# berth against upstream kube-scheduler on the same API server, every seed (tests/conformance);
# `make test` runs the same suite with the small seed set.
conformance: venv binaries
	BERTH_CONFORMANCE_SEEDS=full $(BIN)/pytest tests/conformance $(PYTEST_ARGS)

# berth under faults (tests/faults, docs/faults.md): every scenario with a few hundred pods;
# `make test` runs the proxy's unit tests and the two network scenarios with a small burst.
faults: venv binaries
	BERTH_FAULTS=full $(BIN)/pytest tests/faults $(PYTEST_ARGS)

test: venv binaries lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

demo: venv binaries
	$(BIN)/berth demo

# berth vs upstream kube-scheduler vs a null binder (docs/performance.md). Override e.g.
# `make bench BENCH_ARGS="--workload mixed --nodes 5000 --pods 10000"`.
BENCH_ARGS ?= --workload basic --nodes 500 --pods 2000 --schedulers berth,kube-scheduler,null
bench: venv binaries
	$(BIN)/berth bench $(BENCH_ARGS) --out out/bench

# The Helm chart: lint it (default values and the two-shard example) and package it into out/.
# helm is built from hack/helm/ into the binary cache like the control plane (make binaries).
.PHONY: helm
helm: venv binaries
	@helm=$$($(BIN)/python -c 'from scheduler.harness.binaries import binary; print(binary("helm"))') && \
	  $$helm lint --strict helm/berth && \
	  $$helm lint --strict helm/berth --values helm/berth/ci/shards-values.yaml && \
	  $$helm package helm/berth --destination out/

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache out
