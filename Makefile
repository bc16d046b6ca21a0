# Everything installs into .venv and node_modules; each target is idempotent and quick when done.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

SLITHER_VENV := .venv-slither
SLITHER_STAMP := $(SLITHER_VENV)/.installed

.PHONY: install demo test check lint artifacts clean fuzz slither-venv chromium

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# slither needs web3 < 8, so it lives in its own venv.
$(SLITHER_STAMP):
	test -x $(SLITHER_VENV)/bin/python || $(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip install --quiet 'slither-analyzer==0.11.6' 'crytic-compile==0.4.2'
	touch $@

slither-venv: $(SLITHER_STAMP)

# The explorer's browser tests (tests/api/test_explore_pages.py) drive Debian's chromium through Playwright,
# which cannot download a browser of its own here.
chromium:
	test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

demo: install
	$(BIN)/aigc-market simulate

# Three workers (pytest-xdist) on the two cores: many tests wait on a server, a node or a subprocess, and a third
# worker fills that time (measured: 11.5 min against 14.9 min with two). A file's tests stay on one worker (its
# module fixtures are built once). The numba kernels are compiled once, first, into numba's cache
# (tools/warm_numba.py): otherwise each worker compiles them itself.
test: install $(SLITHER_STAMP) chromium
	$(BIN)/python tools/warm_numba.py
	$(BIN)/python -m pytest -n 3 --dist loadfile

# Long fuzzing campaigns (Hypothesis stateful and forge invariants, deep profiles).
fuzz: install
	AIGC_FUZZ_PROFILE=deep AIGC_FORGE_PROFILE=deep $(BIN)/python -m pytest -s \
	  tests/contracts/test_stateful_market.py::test_stateful_market_holds_every_invariant \
	  tests/contracts/test_forge_invariants.py

# The checks that hold the line (CI runs them before the tests; .pre-commit-config.yaml runs the same):
# ruff lint and format on the whole tree, the import-layer contracts, mypy (strict on the cores).
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

lint: install
	$(BIN)/ruff check .

# Recompile contracts/*.sol into the committed market/chain/build/*.json.
artifacts: install
	$(BIN)/aigc-market chain compile

clean:
	rm -rf $(VENV) $(SLITHER_VENV) node_modules .pytest_cache out
