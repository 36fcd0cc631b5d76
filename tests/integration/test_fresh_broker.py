"""A first deployment: the worker on a broker that has just started, or not yet.

The test broker of the other tests has served many groups by the time a test runs; a
new user's first ``make demo``, or a new cluster, has a broker with no group yet, and
no offsets topic. Its first log is what an operator reads to decide whether the
deployment is healthy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.synthetic.local import LocalBroker, free_port
from tests.integration.harness import (
    Deployment,
    Reader,
    WorkerProcess,
    produce,
    transitions,
    wait_for,
)
from tests.integration.story import healthy, prefixed

pytestmark = pytest.mark.kafka


async def _judges_an_exchange(d: Deployment) -> None:
    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm")))
        await alerts.until(
            lambda r: ("dmm/jp.liability_reserve", "unknown", "ok") in transitions(r)
        )


async def test_a_worker_on_a_broker_just_started_judges_and_logs_no_error(
    tmp_path: Path,
) -> None:
    """The broker makes its offsets topic when the first group asks for its coordinator,
    and answers "coordinator not available" until then, which the group's consumer logs
    as an error; the worker waits for the coordinator before its consumer asks."""
    broker = LocalBroker(free_port(), controller_port=free_port())
    bootstrap = broker.up()
    try:
        d = Deployment(bootstrap)
        worker = WorkerProcess(d, tmp_path).start()
        try:
            await _judges_an_exchange(d)
        finally:
            worker.stop()
        errors = [line for line in worker.log_path.read_text().splitlines() if "[ERROR]" in line]
        assert errors == []
    finally:
        broker.down(wipe=True)


async def test_a_worker_started_before_its_broker_waits_for_it_saying_so(tmp_path: Path) -> None:
    """Started with no broker to answer (a deployment's first start, brokers restarting),
    the worker neither exits nor ends in a traceback: it says it waits, tries again, and
    once the broker is up it takes its records like any other."""
    broker = LocalBroker(free_port(), controller_port=free_port())
    d = Deployment(broker.bootstrap)
    worker = WorkerProcess(d, tmp_path).launch()
    try:
        waiting = f"waiting for Kafka at {broker.bootstrap} (KAFKA_BOOTSTRAP_SERVERS)"
        await wait_for(lambda: worker.log().count(waiting) >= 2, timeout=30)
        worker.check_alive()
        assert "Traceback" not in worker.log()

        broker.up()
        worker.wait_healthy(60)
        await _judges_an_exchange(d)
    finally:
        worker.stop()
        broker.down(wipe=True)
