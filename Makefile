# Reserve Monitor: the commands people and CI run. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
BIN := $(VENV)/bin
KAFKA_PORT ?= 9092
# the test suite runs its own broker, apart from a developer's on 9092
TEST_KAFKA_PORT ?= 19092
# and the security tests a broker with SASL_SSL and ACLs on (its controller takes the next port)
TEST_SECURE_KAFKA_PORT ?= 19392
export KAFKA_PORT

.DEFAULT_GOAL := help
.PHONY: help install kafka-up kafka-down kafka-logs demo test test-unit lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install the project with its test extras

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

kafka-up: ## start the local Kafka broker (KAFKA_PORT, default 9092); idempotent
	@deploy/kafka/kafka.sh up

kafka-down: ## stop the local Kafka broker this repo started; idempotent
	@deploy/kafka/kafka.sh down

kafka-logs: ## show the end of the local broker's log
	@deploy/kafka/kafka.sh logs

demo: install ## play a DMM-style incident through a real broker and worker (about a minute)
	@$(BIN)/python -m connectors.demo

test: install ## every test: unit, property and integration against a real broker
	@KAFKA_PORT=$(TEST_KAFKA_PORT) TEST_SECURE_KAFKA_PORT=$(TEST_SECURE_KAFKA_PORT) $(BIN)/pytest

test-unit: install ## the tests that need no broker
	@$(BIN)/pytest tests/unit

lint: install ## ruff and mypy
	$(BIN)/ruff check monitor connectors tests
	$(BIN)/ruff format --check monitor connectors tests
	$(BIN)/mypy

clean: ## remove the venv and caches (not the Kafka download cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

bench: install ## throughput and alert latency on a real local broker; writes .bench/results.json
	@deploy/kafka/kafka.sh up >/dev/null
	@BENCH_BOOTSTRAP=127.0.0.1:$(KAFKA_PORT) $(BIN)/python -m bench.run
