# Every target builds .venv first if needed; `make help` lists them.
PY      := .venv/bin/python
STAMP   := .venv/.installed
STACK   ?= dev
STACKS  := dev staging prod

.DEFAULT_GOAL := help
.PHONY: help setup test lint fmt models up-local down-local status-local \
        bench bench-models bench-infra policy-review clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP)  ## Build .venv from scratch (pinned by pyproject.toml)

$(STAMP): pyproject.toml
	rm -rf .venv
	python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	.venv/bin/pip check
	touch $@

test: setup  ## Run the whole test suite (the CI command)
	$(PY) -m pytest

lint: setup  ## ruff + mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy infra components modelkit serving policy

fmt: setup  ## Format and autofix
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

models: setup  ## Export models and render build/repos/<target>/ for STACK (default dev)
	$(PY) -m modelkit build --stack $(STACK)

up-local: setup  ## Start the embedded local mode (two Triton sites on emulated buckets)
	@echo "up-local: the embedded local mode is not built yet (issue 5)." >&2; exit 1

bench-infra: setup  ## Time the mocked evaluation of every stack
	$(PY) -m infra.bench $(STACKS)

clean:  ## Remove build outputs and local state (keeps .venv)
	rm -rf build .local
