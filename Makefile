# astrlite: `make run` builds and serves; `make test` sets up and runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
ARGS ?=

.PHONY: setup run dist test lint format bench clean openapi

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(READY)

setup: $(READY) dist

dist:
	$(PYTHON) tools/build_pyz.py
	rm -rf build/lib build/bdist.* *.egg-info   # setuptools leaves moved modules behind
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir dist .

run: dist
	$(PYTHON) dist/astrlite.pyz $(ARGS)

test: setup
	$(BIN)/python -m pytest

lint: $(READY)
	$(BIN)/ruff check astrlite tests bench tools
	$(BIN)/ruff format --check astrlite tests bench tools
	$(BIN)/mypy

format: $(READY)
	$(BIN)/ruff check --fix astrlite tests bench tools
	$(BIN)/ruff format astrlite tests bench tools

bench: setup
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf build dist $(VENV)

# astrlite/openapi.json is the document the server serves; the top-level copy is for readers.
openapi:
	cp astrlite/openapi.json openapi.json
