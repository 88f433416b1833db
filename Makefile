# contact-channels: `make run` serves the API on localhost; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
PORT ?= 3000
export PORT

.PHONY: help run token check test build-debug

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

run: ## Serve the whole API on 127.0.0.1:$(PORT), embedded store + local mailbox (no AWS)
	$(CARGO) run --quiet -p cc-local --bin contact-channels-local

token: ## Mint a dev client token: make token USER=alice
	@$(CARGO) run --quiet -p cc-local --bin contact-channels-local -- token $(USER)

check: ## Formatting and lints, exactly as CI runs them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build-debug:
	$(CARGO) build --workspace --bins

test: check build-debug ## Everything: lints, unit, handler and black-box tests
	$(CARGO) test --workspace
