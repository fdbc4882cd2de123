# Two commands matter on a fresh machine: `make demo` and `make test`. Everything they need
# (a virtualenv with berth and its dev tools, the control-plane binaries) is built on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv binaries test lint typecheck unit e2e demo clean

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

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

e2e: venv binaries
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

test: venv binaries lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

demo: venv binaries
	$(BIN)/berth demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache out
