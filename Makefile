# Quickstart: `make demo` (no REAPER needed) and `make test` (installs liblo-tools and lua5.4 when it
# can, else says which tests it skips and why; pytest -rs lists every skip with its reason).
# Each target makes its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench index train-roles clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m bridge demo

test: $(VENV)/.installed
	@bash tools/optional_tools.sh
	$(PY) -m pytest -q -rs

index:  # the ReaPack repository index of reaper_scripts/ (docs/scripts.md)
	$(PY) tools/reapack_index.py

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_analyze.py

# The role recogniser: render the labelled corpus (fluidsynth, Hydrogen kits, espeak-ng), evaluate
# by held-out sound sources, write bridge/suggest/roles_model.json (docs/roles.md).
train-roles: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[train]'
	$(PY) -m tools.train_roles --jobs 2

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
