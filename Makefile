# Everything installs into .venv and node_modules; each target is idempotent and quick when done.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install demo test lint artifacts clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(BIN)/aigc-market demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check market tests benchmarks

# Recompile contracts/*.sol into the committed contracts/build/*.json.
artifacts: install
	$(BIN)/aigc-market chain compile

clean:
	rm -rf $(VENV) node_modules .pytest_cache
