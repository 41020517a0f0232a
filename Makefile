# The two commands of the README. Each installs what this machine lacks, then runs.
SHELL := /bin/bash

.PHONY: dev test setup check

## dev: set up, then run `compozy dev` on the example project (NATS, engine, runtime and API in one process group)
dev: setup
	@echo "==> starting compozy dev on examples/hello (Ctrl-C to stop)"
	@deno task -q dev

## test: set up, then run every test; the last line is `N passed, N failed`
test: setup
	@scripts/test.sh

## setup: install Deno (from npm, pinned), nats-server (from the OS packages) and the npm dependencies
setup:
	@scripts/setup.sh

## check: formatting, lint and type checks
check:
	deno task check
