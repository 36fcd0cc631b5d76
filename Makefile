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
export KAFKA_PORT

.DEFAULT_GOAL := help
.PHONY: help install monitoring-tools node-tools anvil btcd chromium incidents kafka-up kafka-down kafka-logs demo test test-unit lint bench clean asyncapi k8s-rules

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install the project with its test extras

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

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

node-tools: anvil btcd chromium ## every local node and browser the connector and report tests run against

incidents: install ## replay the incident library and print what the monitor would have said
	@$(BIN)/python -m monitor.synthetic.incidents

kafka-up: ## start the local Kafka broker (KAFKA_PORT, default 9092); idempotent
	@deploy/kafka/kafka.sh up

kafka-down: ## stop the local Kafka broker this repo started; idempotent
	@deploy/kafka/kafka.sh down

kafka-logs: ## show the end of the local broker's log
	@deploy/kafka/kafka.sh logs

demo: install ## play a DMM-style incident through a real broker and worker (about a minute)
	@$(BIN)/python -m monitor.synthetic.demo

test: install $(ASYNCAPI_SPECS) monitoring-tools node-tools ## every test: unit, property and integration against a real broker
	@KAFKA_PORT=$(TEST_KAFKA_PORT) TEST_SECURE_KAFKA_PORT=$(TEST_SECURE_KAFKA_PORT) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-unit: install $(ASYNCAPI_SPECS) monitoring-tools node-tools ## the tests that need no broker
	@$(BIN)/pytest tests/unit

lint: install ## ruff and mypy
	$(BIN)/ruff check monitor connectors tests bench
	$(BIN)/ruff format --check monitor connectors tests bench
	$(BIN)/mypy

clean: ## remove the venv and caches (not the Kafka download cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

bench: install ## replay and core speed, then worker throughput, scale-out, alert latency, lag and restore time on a real local broker; writes .bench/results.json
	@# a broker that does not start skips the Kafka figures, not the others; make still fails
	@if deploy/kafka/kafka.sh up >/dev/null; then \
		BENCH_BOOTSTRAP=127.0.0.1:$(KAFKA_PORT) $(BIN)/python -m bench.run; \
	else \
		echo "bench: the local broker did not start (make kafka-logs): figures without Kafka only" >&2; \
		BENCH_KAFKA=0 $(BIN)/python -m bench.run; exit 1; \
	fi
