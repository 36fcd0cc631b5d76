"""``reserve-monitor import por`` produces to a real broker, and the events read back.

The command runs as a person runs it (a subprocess configured by the worker's
environment variables); a consumer then reads ``exchange.ledger`` of the test's
own tenant and finds one ``customer_liability`` per asset, keyed by exchange,
each one the monitor's decoder takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.core.events import CustomerLiability, Topic, decode
from tests.integration.harness import Deployment, Reader

pytestmark = pytest.mark.kafka

FILES = Path(__file__).resolve().parents[1] / "connectors" / "por_files"


def import_por(deployment: Deployment, file: Path, format_: str, exchange: str) -> None:
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=deployment.bootstrap,
        RESERVE_MONITOR_TOPIC_PREFIX=deployment.prefix,
    )
    options = ["--format", format_, "--exchange", exchange, "--as-of", "2024-05-31T00:00:00Z"]
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "import", "por", str(file), *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # events go to Kafka, not to the terminal


async def test_import_produces_each_liability_to_the_ledger_topic(deployment: Deployment) -> None:
    import_por(deployment, FILES / "okx_liabilities_tree.txt", "okx", "okx-main")
    import_por(deployment, FILES / "summa_balances.csv", "summa", "summa-venue")
    # the same file again: the same ids, which the monitor counts as duplicates
    import_por(deployment, FILES / "summa_balances.csv", "summa", "summa-venue")

    async with Reader(deployment.bootstrap, deployment.topic("exchange.ledger")) as reader:
        records = await reader.until(lambda seen: len(seen) >= 7)

    events = []
    for record in records:
        event = decode(Topic.LEDGER, record.key, record.value)
        assert isinstance(event, CustomerLiability)
        assert record.key.decode() == event.exchange
        events.append(event)
    totals = {(event.exchange, event.asset): event.amount for event in events}
    assert totals == {
        ("okx-main", "BTC"): Decimal("4.7345679"),
        ("okx-main", "ETH"): Decimal("13.00000001"),
        ("okx-main", "USDT"): Decimal("1362.92345678"),
        ("summa-venue", "ETH"): Decimal(172),
        ("summa-venue", "USDT"): Decimal(220103),
    }
    summa_ids = [event.event_id for event in events if event.exchange == "summa-venue"]
    assert len(summa_ids) == 4 and len(set(summa_ids)) == 2
    # the value on the wire is the contract's: amounts as decimal strings
    first = json.loads(records[0].value)
    assert first["type"] == "customer_liability"
    assert isinstance(first["amount"], str)
