# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit bench bench-smoke bench-scale clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/coordinator db upgrade
	$(BIN)/coordinator demo load --if-empty
	$(BIN)/coordinator serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check coordinator adapters tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup
	$(BIN)/python -m bench.run --mode smoke

bench: $(STAMP)
	$(BIN)/python -m bench.run --mode full

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --mode smoke

# B6 (1 M cases, 10 M audit events; by hand or nightly, never in `make test` or CI).
# SCALE=0.01 loads 1 % of the full size.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.b6_scale --mode full $(if $(SCALE),--scale $(SCALE),)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache coordinator.db*
