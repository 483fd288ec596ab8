# Everything builds its own environment from a fresh clone: nothing but Python 3.11+ (3.13 for `sam build`,
# found on PATH or under pyenv) and PyPI is needed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# pyenv's shim answers `command -v` even when 3.13 is not selected, so look in pyenv's versions first.
PY313 := $(shell for p in $$(ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r) $$(command -v python3.13); do "$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)
PYTHON ?= $(if $(PY313),$(PY313),python3)
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
CHECKOV_VENV := .venv-checkov
# sam build looks for the runtime's interpreter (python3.13) on PATH.
SAM_PATH := $(if $(PY313),$(dir $(PY313)):,)$(abspath $(BIN)):$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv lint typecheck validate checkov build unit integration e2e test demo bench soak lock clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (as on these machines) every new process (the stack, moto,
# each Lambda worker, each CLI call in the tests) would otherwise compile boto3, botocore and moto from source.
$(BIN)/.stamp: requirements/dev.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(UV) pip install -q --compile-bytecode --python $(BIN)/python -r requirements/dev.txt
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

$(CHECKOV_VENV)/.stamp: requirements/checkov.txt $(BIN)/.stamp
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV) pip install -q --python $(CHECKOV_VENV)/bin/python -r requirements/checkov.txt
	touch $@

venv: $(BIN)/.stamp ## create the dev environment (.venv)

lint: venv ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy --strict
	$(BIN)/mypy

validate: venv ## sam validate --lint and cfn-lint
	PATH="$(SAM_PATH)" $(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml

checkov: $(CHECKOV_VENV)/.stamp ## checkov on the template (own environment)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

build: venv ## sam build (no container)
	PATH="$(SAM_PATH)" $(BIN)/sam build --template template.yaml

unit: venv ## unit and template tests
	PATH="$(SAM_PATH)" CHECKOV="$(abspath $(CHECKOV_VENV))/bin/checkov" $(BIN)/pytest tests/unit

test: venv $(CHECKOV_VENV)/.stamp lint typecheck ## everything CI runs: lint, types, template checks, all tests
	PATH="$(SAM_PATH)" CHECKOV="$(abspath $(CHECKOV_VENV))/bin/checkov" $(BIN)/pytest tests

demo: venv ## local stack, 50 files through it, every result shown
	$(BIN)/asyncinfer demo -n 50

bench: venv ## benchmarks: cold start, AWS calls per file, handler overhead, throughput, sizes
	PATH="$(SAM_PATH)" $(BIN)/python -m bench.run

soak: venv ## 5,000 files through the local stack with every fault on, then the audit (exit 1 if broken)
	$(BIN)/asyncinfer soak --files 5000 --faults all

lock: venv ## re-pin requirements/*.txt from requirements/*.in
	$(UV) pip compile -q requirements/dev.in -o requirements/dev.txt --python-version 3.13
	$(UV) pip compile -q requirements/checkov.in -o requirements/checkov.txt --python-version 3.13

clean: ## remove environments and build output
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
