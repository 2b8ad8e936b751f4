# The template's two everyday commands: `make demo` and `make test` (see README.md).
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The real interpreter, not a version manager's shim (a baked repo's .python-version would steer a shim).
PYTHON ?= $(shell python3 -c 'import sys; print(sys.executable)')
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= build/demo
TF_LOCK := {{cookiecutter.project_slug}}/requirements/{{ 'dev.txt' if cookiecutter.framework ~ '-' ~ cookiecutter.dvc_remote == 'tensorflow-local' else '' }}

.PHONY: help setup demo test test-fast lint docs lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv with the template's locked test environment

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

demo: setup ## bake a model repo with the defaults into build/demo and run its whole local pipeline and tests
	rm -rf $(DEMO_DIR)
	$(PY) -m cookiecutter --no-input --output-dir $(DEMO_DIR) .
	$(MAKE) -C $(DEMO_DIR)/clinical-risk-model setup pipeline test PYTHON=$(PYTHON)

test: setup ## the full test suite, slow end-to-end tests included (what CI runs)
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

test-fast: setup ## the quick tests only (no training, images or installs)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup ## ruff on the template's own code
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

docs: setup ## regenerate docs/model-yaml.md from schemas/model.schema.json
	$(PY) scripts/schema_docs.py > docs/model-yaml.md

lock: ## re-resolve the generated repos' locks, then this environment (needs uv and the network)
	$(PYTHON) scripts/lock.py
	uv pip compile requirements-dev.in --quiet --universal --python-version 3.11 --generate-hashes \
		-c "$(TF_LOCK)" -o requirements-dev.txt

clean: ## remove the virtualenv, build output and caches
	rm -rf $(VENV) build .pytest_cache .ruff_cache
