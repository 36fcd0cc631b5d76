# Reserve Monitor: the commands people and CI run. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
BIN := $(VENV)/bin
KAFKA_PORT ?= 9092
# the test suite runs its own broker, apart from a developer's on 9092
TEST_KAFKA_PORT ?= 19092
# test modules run side by side in this many processes (pytest-xdist; one module per process)
TEST_WORKERS ?= 2
# and the security tests a broker with SASL_SSL and ACLs on (its controller takes the next port)
TEST_SECURE_KAFKA_PORT ?= 19392
# the official AsyncAPI JSON Schemas (npm), which the test of deploy/asyncapi.yaml checks it against
ASYNCAPI_SPECS_VERSION := 6.11.1
ASYNCAPI_SPECS := .cache/asyncapi/node_modules/@asyncapi/specs/package.json
# what the tests run against besides the project: the AsyncAPI schemas and the local tools
TEST_TOOLS := $(ASYNCAPI_SPECS) monitoring-tools node-tools valgrind
export KAFKA_PORT

.DEFAULT_GOAL := help
.PHONY: help install compile uncompile test-pure monitoring-tools node-tools anvil btcd chromium incidents kafka-up kafka-down kafka-logs demo test test-unit lint bench bench-instructions valgrind clean asyncapi k8s-rules

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install the project with its test extras

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The engine, its state and the rules compiled with mypyc (deploy/compile_core.py says why and how):
# the tests, the bench and the demo run them compiled; importing monitor.core refuses
# compiled modules whose sources changed since, so `make` rebuilds them when they do.
COMPILED := monitor/core/compiled.json
# any source of the core: the compiled modules are typed against the others they import
COMPILED_SOURCES := $(shell find monitor/core -name '*.py')

compile: $(COMPILED) ## compile the engine, its state and the rules with mypyc (29% less time an event)

# without a C compiler or Python's headers the compile fails, says so, and the sources run
$(COMPILED): $(VENV)/.installed deploy/compile_core.py $(COMPILED_SOURCES)
	@mkdir -p .cache
	@if $(BIN)/python deploy/compile_core.py > .cache/compile.log 2>&1; then \
		echo "compiled the core (log: .cache/compile.log)"; \
	else \
		tail -5 .cache/compile.log; \
		echo "make compile: the core could not be compiled (a C compiler and Python's headers are needed; log: .cache/compile.log); its sources run" >&2; \
	fi

uncompile: ## remove the compiled modules: the sources run (to profile them line by line)
	@$(PYTHON) deploy/compile_core.py --remove

$(ASYNCAPI_SPECS):
	npm install --silent --no-audit --no-fund --prefix .cache/asyncapi @asyncapi/specs@$(ASYNCAPI_SPECS_VERSION)

asyncapi: install ## regenerate deploy/asyncapi.yaml from the pydantic models
	$(BIN)/python -m monitor.asyncapi > deploy/asyncapi.yaml

k8s-rules: install ## regenerate deploy/k8s/prometheusrule.yaml from the promtool-tested rules
	$(BIN)/python deploy/k8s/render_prometheusrule.py > deploy/k8s/prometheusrule.yaml

monitoring-tools: ## install Prometheus, promtool, Alertmanager and amtool (Debian packages) if missing
	@deploy/prometheus/install.sh

anvil: ## install anvil (npm @foundry-rs/anvil) into .cache/anvil if missing: the local Ethereum node of the tests
	@deploy/anvil/install.sh

btcd: ## build btcd v0.24.2 (go install) into .cache/btcd if missing: the local Bitcoin regtest node of the tests
	@deploy/btcd/install.sh

chromium: ## install headless Chromium (Debian package) if missing: renders the HTML report in the tests
	@deploy/chromium/install.sh

valgrind: ## install valgrind (Debian package) if missing: make bench-instructions counts instructions under it (and its tests)
	@deploy/valgrind/install.sh

node-tools: anvil btcd chromium ## every local node and browser the connector and report tests run against

incidents: install ## replay the incident library and print what the monitor would have said
	@$(BIN)/python -m monitor.synthetic.incidents

kafka-up: ## start the local Kafka broker (KAFKA_PORT, default 9092); idempotent
	@deploy/kafka/kafka.sh up

kafka-down: ## stop the local Kafka broker this repo started; idempotent
	@deploy/kafka/kafka.sh down

kafka-logs: ## show the end of the local broker's log
	@deploy/kafka/kafka.sh logs

demo: install compile ## play a DMM-style incident through a real broker and worker (about a minute)
	@$(BIN)/python -m monitor.synthetic.demo

# the unit tests on the core's sources first, then everything on the compiled core
test: install test-pure $(TEST_TOOLS) ## every test: unit and property tests on the core's sources, then all of them (integration too, against a real broker) on the compiled core
	@$(MAKE) --no-print-directory compile
	@KAFKA_PORT=$(TEST_KAFKA_PORT) TEST_SECURE_KAFKA_PORT=$(TEST_SECURE_KAFKA_PORT) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-unit: install compile $(TEST_TOOLS) ## the tests that need no broker, on the compiled core
	@$(BIN)/pytest tests/unit

test-pure: install $(TEST_TOOLS) ## the tests that need no broker, on the core's sources
	@$(MAKE) --no-print-directory uncompile
	@$(BIN)/pytest -n $(TEST_WORKERS) tests/unit

lint: install ## ruff and mypy
	$(BIN)/ruff check monitor connectors tests bench
	$(BIN)/ruff format --check monitor connectors tests bench
	$(BIN)/mypy

clean: uncompile ## remove the venv, the compiled core and caches (not the Kafka download cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

bench: install compile ## replay and core speed, then worker throughput, scale-out, alert latency, lag and restore time on a real local broker; writes .bench/results.json
	@# a broker that does not start skips the Kafka figures, not the others; make still fails
	@if deploy/kafka/kafka.sh up >/dev/null; then \
		BENCH_BOOTSTRAP=127.0.0.1:$(KAFKA_PORT) $(BIN)/python -m bench.run; \
	else \
		echo "bench: the local broker did not start (make kafka-logs): figures without Kafka only" >&2; \
		BENCH_KAFKA=0 $(BIN)/python -m bench.run; exit 1; \
	fi

bench-instructions: install compile valgrind ## instructions per event of replay, decode, engine and bare json.loads under callgrind (deterministic, unlike wall time); writes .bench/instructions.json
	@$(BIN)/python -m bench.instructions
