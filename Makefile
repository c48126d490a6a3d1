# dealerml: the short verbs. `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DML := $(BIN)/dealerml
export DEALERML_HOME ?= $(CURDIR)/data
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast bench lint serve clean

# The venv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

## The main job end to end on the embedded synthetic dealer network.
demo: install
	$(BIN)/python -m training.demo

## The whole test suite (unit + integration against real MLflow, PostgreSQL, bentoml serve).
test: install
	$(BIN)/pytest -q -p no:cacheprovider

test-fast: install
	$(BIN)/pytest -q -m "not slow and not realdata"

## Benchmarks: print figures (see BENCHMARKS.md).
bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check training features models serving tests bench

serve: install
	$(DML) serve

clean:
	rm -rf $(VENV) data .pytest_cache
