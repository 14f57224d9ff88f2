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

# Two workers, one a core on the 2-core CI runner (one BLAS/torch thread each: two threads a worker
# only fought the other worker), a test file to a worker so its module fixtures are built once; then
# the tests that assert wall-clock bounds, alone and with the default threads. --durations: the
# slowest, to keep the whole target under 10 min on 2 cores.
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Bytecode caches on even where the environment turns them off (PYTHONDONTWRITEBYTECODE=1): without
# them every pytest process re-rewrites the asserts of ~300 test modules (~7 s each) and every
# subprocess a test starts (doc snippets, CLIs, GARCH helpers) re-compiles the package. They land
# in the git-ignored __pycache__ folders, beside numba's kernel cache.
PYC := PYTHONDONTWRITEBYTECODE=

# While lint runs (mypy: one core), the other core fills the caches a fresh clone lacks:
# tests/warm_numba_cache.py compiles the decision path's kernels (~18 s; else each worker compiles
# them inside its first tests), then a collection writes the test modules' rewritten bytecode.
test: venv
	( $(ONE_THREAD) $(PYC) $(BIN)/python tests/warm_numba_cache.py; \
	  $(PYC) $(BIN)/python -m pytest -q --collect-only >/dev/null 2>&1 ) & warm=$$!; \
	$(MAKE) --no-print-directory lint; status=$$?; wait $$warm; exit $$status
	$(ONE_THREAD) $(PYC) $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not timing" --durations=25
	$(PYC) $(BIN)/python -m pytest -q -m "timing and not slow"

test-all: lint
	$(BIN)/python -m pip install --quiet -e ".[dev,distributed]"  # Ray, for the slow Ray tests
	command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)  # the report's screenshot test
	$(ONE_THREAD) $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not timing"
	$(BIN)/python -m pytest -q -m "timing"

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
