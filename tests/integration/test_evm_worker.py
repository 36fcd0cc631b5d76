"""A hot wallet drained on anvil reaches a real worker through Kafka as an ``ops.hot_wallet_drain``.

The whole path an operations team runs: ``reserve-monitor watch evm`` (a
subprocess, following new blocks) produces wallet balances to the broker, a
``reserve-monitor worker`` judges them with the prices, and the breach comes
out on ``reserve.alerts``. Block times are fixed (12 s apart from a 2024
genesis), so the alert's ``time`` is the drained block's timestamp: the worker
judges by event time, whatever the wall clock says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from monitor.core.money import rfc3339
from tests.connectors.anvil import (
    CONFIRMATIONS,
    GENESIS,
    HOT_DRAINED_JPY,
    HOT_FUNDED_JPY,
    OPS_POLICY,
    PRICES,
    FundedChain,
    drain,
    funded_chain,
)
from tests.integration.harness import (
    ROOT,
    Deployment,
    Reader,
    WorkerProcess,
    events,
    produce,
    transitions,
)
from tests.integration.story import price

pytestmark = pytest.mark.kafka

DRAIN = "dmm/ops.hot_wallet_drain"


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[FundedChain]:
    # the watcher polls the node 5 times a second: enough, on a machine shared with a broker
    with funded_chain(tmp_path, poll_seconds=0.2) as funded:
        yield funded


def start_watcher(d: Deployment, registry: Path, log: Path) -> subprocess.Popen[bytes]:
    """``reserve-monitor watch evm``, producing to the deployment's topics on the broker."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": d.bootstrap,
        "RESERVE_MONITOR_TOPIC_PREFIX": d.prefix,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "watch", "evm", "--wallets", str(registry)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_hot_wallet_drained_on_chain_fires_the_drain_alert_from_the_worker(
    bootstrap: str, chain: FundedChain, log_dir: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "ops.yaml"
    policy.write_text(OPS_POLICY)
    d = Deployment(bootstrap, policy=str(policy))
    worker = WorkerProcess(d, log_dir).start()
    watcher_log = log_dir / "watch-evm.log"
    watcher: subprocess.Popen[bytes] | None = None
    try:
        async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
            at = rfc3339(GENESIS)
            prices = [price(n, asset, cost, at) for n, (asset, cost) in enumerate(PRICES.items())]
            await produce(d.bootstrap, [(d.topic(t), key, value) for t, key, value in prices])
            watcher = start_watcher(d, chain.registry_path, watcher_log)
            await alerts.until(lambda r: (DRAIN, "unknown", "ok") in transitions(r), timeout=120)

            drained = drain(chain.node, chain.token)
            chain.node.mine(CONFIRMATIONS)
            await alerts.until(lambda r: (DRAIN, "ok", "breach") in transitions(r), timeout=120)
    finally:
        if watcher is not None:
            watcher.send_signal(signal.SIGTERM)
            stopped = watcher.wait(timeout=60)
        worker.stop()

    assert stopped == 0, watcher_log.read_text()
    assert transitions(alerts.records, "ops.hot_wallet_drain") == [
        (DRAIN, "unknown", "ok"),
        (DRAIN, "ok", "breach"),
    ]
    breach: dict[str, Any] = events(alerts.records)[-1]
    assert breach["time"] == rfc3339(chain.node.block_time(drained))
    data = breach["data"]
    assert Decimal(data["available"]) == HOT_DRAINED_JPY
    assert Decimal(data["evidence"]["peak_hot_value"]) == HOT_FUNDED_JPY
    assert {f["wallet"] for f in data["evidence"]["hot_wallet_falls"]} == {
        "eth-hot-1",
        "usdt-hot-1",
    }
    log = watcher_log.read_text()
    assert "eth: confirmed height" in log and "Traceback" not in log
