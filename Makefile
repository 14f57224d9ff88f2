# Every target creates .venv on first use and installs what it needs (torch CPU wheel first).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo report test test-all lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layer and import contracts in pyproject.toml

test: lint
	$(BIN)/python -m pytest -q --durations=25  # the slowest tests, to keep the suite under 10 min on 2 cores

test-all: lint
	$(BIN)/python -m pip install --quiet -e ".[dev,distributed]"  # Ray, for the slow Ray tests
	command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)  # the report's screenshot test
	$(BIN)/python -m pytest -q -m ""

demo: venv
	$(BIN)/python examples/trading_loop.py

report: venv
	$(BIN)/python -m advanced_risk report

bench: venv
	$(BIN)/python benchmarks/bench_measures.py
	$(BIN)/python benchmarks/bench_ppo.py
	$(BIN)/python benchmarks/bench_manager.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
