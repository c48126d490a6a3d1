# dealerml: the short verbs. `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DML := $(BIN)/dealerml
export DEALERML_HOME ?= $(CURDIR)/data
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast bench bench-scale lint serve clean

# The venv is rebuilt when pyproject.toml or constraints.txt changes. constraints.txt pins the
# versions the figures in BENCHMARKS.md were measured with (numerics differ between releases).
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

## The main job end to end on the embedded synthetic dealer network.
demo: install
	$(BIN)/python -m training.demo

## The whole test suite (unit + integration against real MLflow, PostgreSQL, bentoml serve).
## Two pytest-xdist workers (one per core); --dist loadfile keeps each file on one worker, so a
## module's expensive fixture (test_serving.py's trained home and server) is built once.
## Temporary files on tmpfs (/dev/shm) where there is one: the MLflow SQLite stores the tests create
## sync to disk on every commit, which made a `train churn` 4.4-6.7 s instead of 3.0-3.6 s at load 5.
TEST_TMPDIR := $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm || echo "$${TMPDIR:-/tmp}")
test: install
	TMPDIR=$(TEST_TMPDIR) $(BIN)/pytest -q -p no:cacheprovider --durations=10 -n 2 --dist loadfile

test-fast: install
	$(BIN)/pytest -q -m "not slow and not realdata"

## Benchmarks: print figures (see BENCHMARKS.md). About an hour on 2 cores; bench-scale adds
## the 10k / 100k-series demand runs (hours).
BENCH := $(DEALERML_HOME)/bench
bench: install
	@mkdir -p $(BENCH)
	$(BIN)/python bench/bench_features.py
	$(DML) data validate --config experiments/online_retail.yaml --json $(BENCH)/quality_online_retail.json
	$(DML) backtest churn --config experiments/online_retail.yaml --cutoff 2011-09-10 --horizon-days 90 --json $(BENCH)/churn_online_retail.json
	$(DML) backtest dealers --config experiments/online_retail.yaml --cutoff 2011-06-01 --horizon-days 182 --json $(BENCH)/dealers_online_retail.json
	$(BIN)/python bench/bench_demand.py stallion
	$(BIN)/python bench/bench_demand.py online_retail
	$(BIN)/python bench/bench_demand.py scale --n 1000
	$(BIN)/python bench/bench_serving.py
	$(BIN)/python bench/bench_safety_stock.py --sizes 1000 5000 --check

bench-scale: install
	$(BIN)/python bench/bench_demand.py scale --n 1000 10000 100000 --with-fit

lint: install
	$(BIN)/ruff check training features models serving tests bench

serve: install
	$(DML) serve

clean:
	rm -rf $(VENV) data .pytest_cache
