# Two commands matter: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench bench-quick infra-up infra-down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/optima-bi demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	infra/with-services tests/run $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# 10 million orders in PostgreSQL and the store, every tool side by side;
# rewrites perf/RESULTS.md. The first run seeds both (tens of minutes).
bench: $(STAMP)
	infra/postgres/up >/dev/null
	$(BIN)/python -m perf.bench

bench-quick: $(STAMP)
	infra/postgres/up >/dev/null
	$(BIN)/python -m perf.bench --quick

infra-up:
	infra/up

infra-down:
	infra/down

clean:
	infra/down || true
	rm -rf .infra .pytest_cache
