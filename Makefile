# contact-channels: `make run` serves the API on localhost; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
MOTO_VERSION := 5.2.5
SCHEMATHESIS_VERSION := 4.32.5
OPENAPI_VALIDATOR_VERSION := 0.9.0
export SAM_CLI_TELEMETRY := 0

FUNCTIONS := create list patch delete send-verification attempt events
# SAM logical ids → binary names, for `BuildMethod: makefile`.
BIN_CreateFunction := cc-create
BIN_ListFunction := cc-list
BIN_PatchFunction := cc-patch
BIN_DeleteFunction := cc-delete
BIN_SendVerificationFunction := cc-send-verification
BIN_AttemptFunction := cc-attempt
BIN_EventsFunction := cc-events
# `sam build` builds with PROFILE=release; the SAM test reuses the debug build (PROFILE=dev).
PROFILE ?= release
PROFILE_DIR := $(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
# Where cargo puts its builds: `target/`, or `CARGO_TARGET_DIR` when set (a shared build cache).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

# The TypeScript SDK (clients/typescript) and its account page example (examples/account-page).
SDK := clients/typescript
CHROMIUM ?= /usr/bin/chromium

.PHONY: help run token table openapi check test test-rust test-aws test-faults test-sam test-openapi test-sdk sdk node build-debug venv build functions sam-build bench

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

run: ## Serve the whole API on 127.0.0.1:$${PORT:-3000}, embedded store + local mailbox (no AWS)
	@# The account page (/_dev/account) needs the built SDK; the API itself does not.
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory sdk || echo "warning: the SDK did not build: /_dev/account will say so"; \
	else echo "note: npm not found: /_dev/account needs the SDK (make sdk, Node.js >= 18)"; fi
	$(CARGO) run --quiet -p cc-local --bin contact-channels-local

token: ## Mint a dev client token: make token USER=alice
	@$(CARGO) run --quiet -p cc-local --bin contact-channels-local -- token $(USER)

table: ## Create TABLE_NAME on the DynamoDB endpoint the AWS variables point at
	$(CARGO) run --quiet -p cc-local --bin contact-channels-local -- create-table

openapi: ## Write openapi.json from the code (route table, request/response types, errors)
	$(CARGO) run --quiet -p cc-tests --bin cc-openapi -- openapi.json

check: ## Formatting and lints, exactly as CI runs them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The AWS-compatible test server (moto) lives in a project venv, installed on first use.
$(VENV)/.moto-$(MOTO_VERSION):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "moto[server]==$(MOTO_VERSION)"
	touch $@

venv: $(VENV)/.moto-$(MOTO_VERSION)

# SAM CLI (and with it cfn-lint) in the same venv, for `sam validate --lint` and `sam build`.
$(VENV)/.sam: $(VENV)/.moto-$(MOTO_VERSION)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "aws-sam-cli>=1.140"
	touch $@

# The OpenAPI validator and the fuzzer (schemathesis), in the same venv.
$(VENV)/.openapi-$(SCHEMATHESIS_VERSION)-$(OPENAPI_VALIDATOR_VERSION): $(VENV)/.moto-$(MOTO_VERSION)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
	  "schemathesis==$(SCHEMATHESIS_VERSION)" "openapi-spec-validator==$(OPENAPI_VALIDATOR_VERSION)"
	touch $@

# With PROFILE=dev (the SAM test) the binaries are those of the workspace debug build: building
# only the functions would resolve their dependencies' features differently and compile them all
# a second time.
functions: ## One cargo build of all seven function binaries (PROFILE=release by default)
	$(CARGO) build --profile $(PROFILE) $(if $(filter dev,$(PROFILE)),--workspace --bins,$(addprefix -p cc-,$(FUNCTIONS)))

build: functions ## Release binaries and one deployable zip per function under dist/
	rm -rf dist && mkdir -p dist
	for f in $(FUNCTIONS); do \
	  mkdir -p dist/$$f && cp $(TARGET_DIR)/$(PROFILE_DIR)/cc-$$f dist/$$f/bootstrap && \
	  (cd dist/$$f && $(PYTHON) -m zipfile -c ../$$f.zip bootstrap); \
	done
	ls -l dist/*.zip

# Called by `sam build` (BuildMethod: makefile), once per function, in the source tree.
build-%: functions
	cp $(TARGET_DIR)/$(PROFILE_DIR)/$(BIN_$*) $(ARTIFACTS_DIR)/bootstrap

sam-build: $(VENV)/.sam ## Validate (with cfn-lint) and build the SAM stack
	$(VENV)/bin/sam validate --lint
	$(VENV)/bin/sam build

build-debug:
	$(CARGO) build --workspace --bins

test-rust: venv build-debug
	$(CARGO) test --workspace

# The black-box HTTP suites once more, with the local server on DynamoDB + SES (moto).
test-aws: venv build-debug
	TEST_BACKEND=aws $(CARGO) test -p cc-tests --test api_crud --test api_verification

# Fault injection (docs/security.md, "Fault injection: results"): DynamoDB and SES faults through
# the real SDK on moto, and kill -9 of the local server mid-write. `make test` runs them within
# test-rust (`cargo test --workspace`); this target runs them alone (about 2 minutes).
test-faults: venv build-debug ## Only the fault-injection suites (DynamoDB, SES, process death)
	$(CARGO) test -p cc-tests --test faults_dynamo --test faults_ses --test crash_embedded

# The template linted and built by SAM (on the debug binaries), then the artifacts checked.
test-sam: $(VENV)/.sam build-debug
	$(VENV)/bin/sam validate --lint
	$(VENV)/bin/cfn-lint template.yaml
	PROFILE=dev $(VENV)/bin/sam build
	$(CARGO) test -p cc-tests --test sam_stack -- --include-ignored

# Node.js and npm: on the dev image already; Debian's packages otherwise.
node:
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	@node -e 'if (+process.versions.node.split(".")[0] < 18) { console.error("Node.js >= 18 is needed, found " + process.version); process.exit(1) }'

$(SDK)/node_modules/.installed: $(SDK)/package-lock.json $(SDK)/package.json
	cd $(SDK) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

sdk: node $(SDK)/node_modules/.installed ## Build the TypeScript SDK into clients/typescript/dist
	cd $(SDK) && npm run -s build

# Headless Chromium for the account page's browser test: Debian's package, installed when missing.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The SDK: type checks (public API, and against openapi.json when the repo has it), unit tests,
# every method against the spawned local server, and the account page in headless Chromium
# (screenshots in target/sdk-browser/).
test-sdk: sdk build-debug $(CHROMIUM) ## The TypeScript SDK: types, unit, integration and browser tests
	cd $(SDK) && npm run -s typecheck && npm run -s check:openapi
	cd $(SDK) && node --test test/unit/*.test.mjs
	cd $(SDK) && CC_LOCAL_BIN=$(TARGET_DIR)/debug/contact-channels-local CHROMIUM=$(CHROMIUM) \
	  SCREENSHOT_DIR=$(CURDIR)/target/sdk-browser node --test --test-concurrency=1 test/integration/*.test.mjs test/browser/*.test.mjs

# openapi.json validated as OpenAPI 3.1 (test-rust checks it is what the code generates), then
# schemathesis fuzzes a spawned local server against it, as a server and as a client.
test-openapi: $(VENV)/.openapi-$(SCHEMATHESIS_VERSION)-$(OPENAPI_VALIDATOR_VERSION) build-debug
	$(VENV)/bin/openapi-spec-validator --schema 3.1 openapi.json
	$(CARGO) test -p cc-tests --test openapi_fuzz -- --include-ignored

# One build of every measured binary (the seven functions, the skeleton they are compared with,
# the local server), so all share one feature resolution; the benches then only build themselves
# and run those binaries from target/perf/. Not part of CI: the figures depend on the machine.
BENCHES := --bench api $(if $(wildcard tests/bench_local.rs),--bench local)

bench: venv ## Init, cold/warm request over TLS, zip size and memory vs a bare skeleton; local server latency
	$(CARGO) build --profile perf $(addprefix -p cc-,$(FUNCTIONS)) -p cc-skeleton -p cc-local
	$(CARGO) bench --profile perf -p cc-tests $(BENCHES)

test: check test-rust test-aws test-sam test-openapi test-sdk ## Everything: lints, unit, conformance, handler, SAM, black-box, fuzz and SDK tests
