# Two entry points: `make run` (the daemon on the mock pool) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test redis-server lint wrk bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The daemon, installed (not editable, so twistd finds its dropin) and
# started on 127.0.0.1:8080 with the embedded mock configuration.
run: $(BIN)/python
	$(BIN)/pip install --quiet .
	$(BIN)/twistd --nodaemon --pidfile= rpoold

# redis-server for the tests that speak Redis (Debian/Ubuntu package).
redis-server:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

# wrk, the load generator of the benchmarks in bench/ (Debian/Ubuntu package).
wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

# The core0 backend against a bare Klein endpoint (prints figures; see docs).
bench: redis-server wrk $(BIN)/python
	$(BIN)/pip install --quiet .
	$(BIN)/python bench/core0_mem.py

lint: $(BIN)/python
	$(BIN)/ruff check rpoold rpool plugins twisted tests bench testbed
	$(BIN)/mypy

test: redis-server $(BIN)/python
	$(BIN)/pip install --quiet '.[test]'
	$(MAKE) lint
	$(BIN)/python -m pytest
