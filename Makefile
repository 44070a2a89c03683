# Quickstart: `make demo` (no REAPER needed) and `make test`.
# Each target makes its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench train-roles clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m bridge demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_analyze.py

# The role recogniser: render the labelled corpus (fluidsynth, Hydrogen kits, espeak-ng), evaluate
# by held-out sound sources, write bridge/suggest/roles_model.json (docs/roles.md).
train-roles: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[train]'
	$(PY) -m tools.train_roles --jobs 2

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
