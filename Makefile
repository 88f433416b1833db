# contact-channels: `make run` serves the API on localhost; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
MOTO_VERSION := 5.2.5

.PHONY: help run token table check test test-rust test-aws build-debug venv

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

run: ## Serve the whole API on 127.0.0.1:$${PORT:-3000}, embedded store + local mailbox (no AWS)
	$(CARGO) run --quiet -p cc-local --bin contact-channels-local

token: ## Mint a dev client token: make token USER=alice
	@$(CARGO) run --quiet -p cc-local --bin contact-channels-local -- token $(USER)

table: ## Create TABLE_NAME on the DynamoDB endpoint the AWS variables point at
	$(CARGO) run --quiet -p cc-local --bin contact-channels-local -- create-table

check: ## Formatting and lints, exactly as CI runs them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The AWS-compatible test server (moto) lives in a project venv, installed on first use.
$(VENV)/.moto-$(MOTO_VERSION):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "moto[server]==$(MOTO_VERSION)"
	touch $@

venv: $(VENV)/.moto-$(MOTO_VERSION)

build-debug:
	$(CARGO) build --workspace --bins

test-rust: venv build-debug
	$(CARGO) test --workspace

# The black-box HTTP suites once more, with the local server on DynamoDB + SES (moto).
test-aws: venv build-debug
	TEST_BACKEND=aws $(CARGO) test -p cc-tests --test api_crud --test api_verification

test: check test-rust test-aws ## Everything: lints, unit, conformance, handler and black-box tests
