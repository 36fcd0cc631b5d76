"""A first deployment: the worker on a broker that has just started.

The test broker of the other tests has served many groups by the time a test runs; a
new user's first ``make demo``, or a new cluster, has a broker with no group yet, and
no offsets topic. Its first log is what an operator reads to decide whether the
deployment is healthy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.synthetic.local import LocalBroker, free_port
from tests.integration.harness import Deployment, Reader, WorkerProcess, produce, transitions
from tests.integration.story import healthy, prefixed

pytestmark = pytest.mark.kafka


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
            async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
                await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm")))
                await alerts.until(
                    lambda r: ("dmm/jp.liability_reserve", "unknown", "ok") in transitions(r)
                )
        finally:
            worker.stop()
        errors = [line for line in worker.log_path.read_text().splitlines() if "[ERROR]" in line]
        assert errors == []
    finally:
        broker.down(wipe=True)
