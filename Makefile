# Wulian (五联) developer commands.
#
#   make venv    create .venv (Python 3.11) and install the project with its dev tools
#   make run     run everything (Temporal dev server, worker, web) in the foreground; Ctrl-C stops
#   make test    ruff, mypy, then pytest on every core (pytest-xdist), printing the 20 slowest tests
#                (extra pytest arguments: make test PYTEST_ARGS="-k api"; one process: PYTEST_ARGS="-n 0")
#   make lint    ruff and mypy only
#   make clean   DELETES var/ (the default data directory: store, Temporal history, logs, secret key)
#                and the tool caches, without asking

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

# python3.11, or python3 when that is 3.11; empty when neither (checked in the recipe).
PYTHON311 = $(shell command -v python3.11 2>/dev/null || \
	(python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3))

.PHONY: venv run test lint clean

venv: $(STAMP)

$(BIN)/python:
	@test -n "$(PYTHON311)" || { echo "Python 3.11 is required (python3.11 or python3 3.11 on PATH)"; exit 1; }
	$(PYTHON311) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@

run: venv
	$(BIN)/python -m wulian.launcher

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q -n auto --durations=20 $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
