"""Silence is not safety, through the real broker: a wallet feed that stops is an alert."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.core.money import rfc3339
from tests.integration.harness import (
    Deployment,
    Reader,
    WorkerProcess,
    events,
    produce,
    transitions,
    wait_for,
)
from tests.integration.story import fund, healthy, prefixed, price, wallet

pytestmark = pytest.mark.kafka

RESERVE = "jp.liability_reserve"
COLD = "jp.cold_storage"
START = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
MAX_WALLET_AGE = 4  # seconds: cold storage judges wallets at most this old

POLICY = f"""\
reporting_currency: JPY
packs:
  jp:
    cold_storage: {{max_wallet_age: {MAX_WALLET_AGE}s}}
exchanges:
  default: {{packs: [jp]}}
"""


async def _keep_talking(bootstrap: str, prefix: str, began: float) -> None:
    """The price and ledger feeds go on, stamped with the time as it passes."""
    for n in range(2, 10_000):
        now = rfc3339(START + timedelta(seconds=time.monotonic() - began))
        await produce(
            bootstrap,
            prefixed(prefix, [price(n, "BTC", "10700000", now), fund(n, "dmm", "5000000000", now)]),
        )
        await asyncio.sleep(0.5)


@pytest.fixture
def worker(bootstrap: str, log_dir: Path, tmp_path: Path) -> Iterator[WorkerProcess]:
    """This module's worker: its cold-storage rule allows wallets MAX_WALLET_AGE s of age."""
    policy = tmp_path / "short-wallet-age.yaml"
    policy.write_text(POLICY)
    worker = WorkerProcess(Deployment(bootstrap, policy=str(policy)), log_dir).start()
    try:
        yield worker
    finally:
        worker.stop()


def _wallets_again(prefix: str, at: str) -> list[tuple[str, str, Any]]:
    """dmm's wallets reported again, unchanged, at ``at``."""
    return prefixed(
        prefix,
        [
            wallet(7, "dmm", "btc-cold-1", "BTC", "97000", "cold", at),
            wallet(8, "dmm", "btc-hot-1", "BTC", "3000", "hot", at),
        ],
    )


async def test_a_wallet_feed_that_stops_makes_cold_storage_unknown_with_an_alert(
    worker: WorkerProcess,
) -> None:
    d = worker.deployment
    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        began = time.monotonic()
        await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm", rfc3339(START))))
        talking = asyncio.create_task(_keep_talking(d.bootstrap, d.prefix, began))
        try:
            await alerts.until(lambda r: (f"dmm/{COLD}", "unknown", "ok") in transitions(r))
            # no wallet snapshot after the first ones: their age passes the maximum
            await alerts.until(lambda r: (f"dmm/{COLD}", "ok", "unknown") in transitions(r))
            # the gauges follow on the worker's next tick
            unknown = await wait_for(
                lambda: worker.sample(
                    "reserve_monitor_rule_status", exchange="dmm", rule=COLD, status="unknown"
                )
            )
            ages = worker.counts("reserve_monitor_feed_age_seconds", "exchange", "feed")
            reserve_status = worker.rule_status("dmm", RESERVE)
            # the wallet feed speaks again: cold storage is judged again
            now = START + timedelta(seconds=time.monotonic() - began + 1)
            await produce(d.bootstrap, _wallets_again(d.prefix, rfc3339(now)))
            await alerts.until(lambda r: transitions(r, COLD)[-1][1:] == ("unknown", "ok"))
        finally:
            talking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await talking

    went_unknown = next(
        e
        for e in events(alerts.records)
        if e["subject"] == f"dmm/{COLD}" and e["data"]["status"] == "unknown"
    )
    data = went_unknown["data"]
    assert data["previous_status"] == "ok"
    assert data["ratio"] is None and data["shortfall"] is None
    assert "wallet_balances data for dmm is" in data["reason"]
    assert f"older than the {MAX_WALLET_AGE}s this rule allows" in data["reason"]
    assert data["evidence"]["feed"] == "wallet_balances"
    # the gauges say which feed went quiet, and the rules that do not need it go on
    assert ages[("dmm", "wallet_balances")] > MAX_WALLET_AGE
    assert ages[("dmm", "prices")] < MAX_WALLET_AGE
    assert ages[("dmm", "ledger")] < MAX_WALLET_AGE
    assert unknown == 1.0
    assert reserve_status == "ok"
    assert transitions(alerts.records, RESERVE) == [(f"dmm/{RESERVE}", "unknown", "ok")]
    assert [t[1:] for t in transitions(alerts.records, COLD)] == [
        ("unknown", "ok"),
        ("ok", "unknown"),
        ("unknown", "ok"),
    ]
    assert json.loads(alerts.records[0].value)["specversion"] == "1.0"


async def test_an_exchange_gone_silent_by_wall_time_turns_the_rules_needing_its_feed_unknown(
    worker: WorkerProcess,
) -> None:
    # Nothing of dmm comes after its first records, not even a price: no moment of its
    # own can judge the ages of its feeds. The worker notices by wall time (CONTRACT
    # section 8, outside the guarantee on purpose).
    d = worker.deployment
    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm", rfc3339(START))))
        await alerts.until(lambda r: (f"dmm/{COLD}", "unknown", "ok") in transitions(r))
        await alerts.until(lambda r: (f"dmm/{COLD}", "ok", "unknown") in transitions(r))
        # dmm speaks again, an hour later in its event time: judged again at its moment
        later = rfc3339(START + timedelta(hours=1))
        await produce(
            d.bootstrap,
            [
                *prefixed(d.prefix, [price(2, "BTC", "10700000", later)]),
                *_wallets_again(d.prefix, later),
            ],
        )
        await alerts.until(lambda r: transitions(r, COLD)[-1][1:] == ("unknown", "ok"))

    silenced = next(
        e["data"]
        for e in events(alerts.records)
        if e["subject"] == f"dmm/{COLD}" and e["data"]["status"] == "unknown"
    )
    assert silenced["reason"].startswith("feed silent: nothing from dmm for ")
    assert f"older than the {MAX_WALLET_AGE}s this rule allows" in silenced["reason"]
    assert silenced["evidence"]["feed"] == "wallet_balances"
    # noticed by wall time, not before the rule's limit had passed (the worker's own
    # measure of the silence, in its evidence)
    assert silenced["evidence"]["silent_seconds"] > MAX_WALLET_AGE - 1
    # as of dmm's newest moment: the silence chose no moment of its own
    assert silenced["as_of"] == rfc3339(START)
    # jp.liability_reserve allows its feeds hours of age: the silence did not touch it
    assert ("ok", "unknown") not in [t[1:] for t in transitions(alerts.records, RESERVE)]
