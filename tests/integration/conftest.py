"""One real Kafka broker for the whole session; a fresh tenant for every test."""

from __future__ import annotations

import gc
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_test_broker
from tests.integration.harness import Deployment, LocalBroker, WorkerProcess

TEST_PORT = os.environ.get("KAFKA_PORT", "19092")


def _kafka(command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return LocalBroker(TEST_PORT).run(command, check=check)


@pytest.fixture(autouse=True)
def _connections_left_to_the_collector() -> Iterator[None]:
    """Each test's leftover client connections are collected at its end, unwarned.

    aiokafka may leave a connection to the garbage collector when a client is stopped
    while that connection is still opening (seen with consumers stopped mid-rebalance,
    and once in a test whose producer and reader had both been stopped). Its
    ResourceWarning would surface in whichever later test first collects it, as a
    pytest unraisable-exception error against a test that did nothing wrong. Collected
    at the end of the test that made it, it is let go: the clients were stopped as
    aiokafka documents. The workers under test run in processes of their own, so no
    connection of theirs is hidden here.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="session")
def bootstrap() -> str:
    """A broker on KAFKA_PORT (19092 for tests): reused if running, else started.

    Started once for the whole run, by whichever parallel worker asks first (kafka.sh
    takes one `up` at a time per port); tests/conftest.py stops it when the run ends.
    """
    return start_test_broker()


@pytest.fixture
def deployment(bootstrap: str) -> Deployment:
    return Deployment(bootstrap)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def worker(deployment: Deployment, log_dir: Path) -> Iterator[WorkerProcess]:
    """A running worker for the test's deployment, stopped afterwards."""
    process = WorkerProcess(deployment, log_dir).start()
    try:
        yield process
    finally:
        process.stop()


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """On a failing integration test, show the worker logs and the broker's."""
    if call.when != "call" or call.excinfo is None:
        return
    logs = []
    for name in ("worker", "second_worker"):
        process = item.funcargs.get(name) if hasattr(item, "funcargs") else None
        if isinstance(process, WorkerProcess):
            logs.append(f"--- {name} log ---\n{process.log(80)}")
    broker = _kafka("logs", check=False).stdout.splitlines()[-40:]
    logs.append("--- broker log ---\n" + "\n".join(broker))
    item.add_report_section("call", "processes", "\n".join(logs))
