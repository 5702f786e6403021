# One command each: `make demo` and `make test` set up .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint doc dist sdist-check ci clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: on these machines it is a local CPU wheel; a bare
	# `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m skinfluence demo --output demo_output

test: $(STAMP)
	$(PY) -m pytest

# The documentation: Sphinx, its extensions and the examples gallery; warnings fail.
DOC_STAMP := $(VENV)/.installed-doc
$(DOC_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,doc]"
	touch $(DOC_STAMP)

doc: $(DOC_STAMP)
	$(PY) -m sphinx -W --keep-going -b html doc doc/_build/html
	@echo "Documentation: doc/_build/html/index.html"

# flake8, then the wings' import contracts (import-linter, setup.cfg [importlinter])
lint: $(STAMP)
	$(PY) -m flake8 skinfluence tests examples benchmarks
	$(VENV)/bin/lint-imports --no-cache

# The wheel and the sdist, built in isolation and checked (metadata, README rendering).
DIST_STAMP := $(VENV)/.installed-dist
$(DIST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,dist]"
	touch $(DIST_STAMP)

dist: $(DIST_STAMP)
	rm -rf dist
	$(PY) -m build --sdist --wheel --outdir dist .
	$(PY) -m twine check --strict dist/*

# The sdist on its own: a fresh venv installs it and its test suite runs green.
SDIST_DIR := build/sdist-check
sdist-check: dist
	rm -rf $(SDIST_DIR) && mkdir -p $(SDIST_DIR)
	$(PYTHON) -m venv $(SDIST_DIR)/venv
	$(SDIST_DIR)/venv/bin/python -m pip install --quiet --upgrade pip
	$(SDIST_DIR)/venv/bin/python -m pip install --quiet torch==2.13.0
	$(SDIST_DIR)/venv/bin/python -m pip install --quiet "$$(ls dist/*.tar.gz)[dev]"
	tar -xzf dist/*.tar.gz -C $(SDIST_DIR)
	cd $(SDIST_DIR)/skinfluence-*/ && ../venv/bin/python -m pytest -q -p no:cacheprovider

# What CI runs: the tests, the linter, the documentation (-W), the packages.
ci: test lint doc dist sdist-check

clean:
	rm -rf $(VENV) build dist *.egg-info demo_output .pytest_cache doc/_build doc/auto_examples doc/api/generated

# Mutation testing of the scoring core (slow; not CI): mutmut in a snapshot under mutants/,
# each module with the test files that exercise it. Results: benchmarks/quality/RESULTS_mutation.md.
.PHONY: mutation
mutation: $(STAMP)
	$(PY) -m pip install --quiet "mutmut>=3.3"
	OMP_NUM_THREADS=1 nice $(PY) benchmarks/quality/mutation.py $(GROUPS)
