"""One real Kafka broker for the whole session; a fresh tenant for every test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, Deployment, WorkerProcess, broker_script, local_broker

KAFKA = ROOT / "deploy" / "kafka" / "kafka.sh"
TEST_PORT = os.environ.get("KAFKA_PORT", "19092")


def _kafka(command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return broker_script(KAFKA, TEST_PORT, command, check=check)


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    """A broker on KAFKA_PORT (19092 for tests): reused if running, else started and stopped.

    One the session started is wiped when it stops: the topics of run after run
    (thousands of partitions) slow every group join.
    """
    with local_broker(TEST_PORT, wipe=True) as address:
        yield address


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
