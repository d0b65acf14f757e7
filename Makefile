# Every target sets itself up: a fresh machine needs only `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup demo test test-fast e2e lint typecheck compile bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.4,<1"
	$(UV) pip install --python $(PY) --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

demo: setup  ## the main job: the whole loop on embedded defaults
	$(VENV)/bin/flywheel demo

test: setup  ## every test, with the services and tools they need
	bash scripts/test-services.sh
	$(PY) -m pytest -p no:cacheprovider

e2e: setup  ## the cluster half here: both images built with podman, the real API server
	bash scripts/e2e/prepare.sh
	$(PY) -m pytest -p no:cacheprovider -m e2e tests/e2e

test-fast: setup  ## the unit tests only (tests/unit): in-process, no servers, no pipeline runs
	$(PY) -m pytest -m unit -x -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy flywheel_mlops components pipelines inference

compile: setup  ## recompile the committed pipeline YAML
	$(VENV)/bin/flywheel compile

bench: setup
	$(PY) benchmarks/pipeline_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache flywheel-data
