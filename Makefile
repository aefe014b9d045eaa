# The two commands of the README's quick start, and what they stand on.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lmforge-installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup            ## set up, then run every stage on the built-in sample
	$(BIN)/lmforge demo

test: setup            ## set up, then run the test suite (pytest-xdist: 2 processes, a test file each at a time, the demo first)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

bench: setup           ## every benchmark (needs ../shared/data)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf demo-out .pytest_cache
