"""Bad input, duplicates and order through one worker on the real broker (CONTRACT section 5).

The whole malformed corpus goes in first, then a healthy exchange, then
duplicates, stale snapshots and late trades. Every message is accounted for
under exactly one outcome, every bad one is dead-lettered with its reason and
its original bytes, and the worker goes on judging what came after.
"""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest

from tests.corpus import cases
from tests.integration.harness import (
    Deployment,
    Reader,
    WorkerProcess,
    produce,
    transitions,
    wait_for,
)
from tests.integration.story import (
    LEDGER,
    PRICES,
    TRADES,
    WALLETS,
    fund,
    healthy,
    prefixed,
    price,
    trade,
    wallet,
)

pytestmark = pytest.mark.kafka

RESERVE = "jp.liability_reserve"
COLD = "jp.cold_storage"


def _late_and_repeated() -> list[tuple[str, str, object]]:
    """After ``healthy("dmm")`` at 13:00: what each outcome other than invalid looks like."""
    # w-1 again, a month after the other events (but not after the wall clock, which would
    # make it invalid): a duplicate, which must not move time
    repeated_wallet = wallet(1, "dmm", "btc-cold-1", "BTC", "1", "cold", "2024-07-01T00:00:00Z")
    return [
        repeated_wallet,
        wallet(90, "dmm", "btc-cold-1", "BTC", "1", "cold", "2024-05-31T12:00:00Z"),  # stale
        fund(90, "dmm", "1", "2024-05-31T12:00:00Z"),  # older than the fund held: stale
        trade(1, "dmm", "1250000", "2024-05-31T12:30:00Z"),  # late, inside the window
        trade(1, "dmm", "1250000", "2024-05-31T12:30:00Z"),  # the same trade again
        trade(2, "dmm", "7000000", "2024-04-01T00:00:00Z"),  # before the 30-day window
        price(1, "BTC", "10700000", "2024-05-31T13:00:00Z"),  # p-1 again
        price(90, "BTC", "1", "2024-05-31T12:00:00Z"),  # older than the price held: stale
    ]


async def test_every_message_is_accounted_for_and_every_bad_one_dead_lettered(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    d = deployment
    corpus = cases()
    async with (
        Reader(d.bootstrap, d.topic("reserve.deadletter")) as dead,
        Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts,
    ):
        landed = await produce(
            d.bootstrap, [(d.topic(case.topic.value), case.key, case.value) for case in corpus]
        )
        await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm")))
        await alerts.until(
            lambda r: (
                {(f"dmm/{RESERVE}", "unknown", "ok"), (f"dmm/{COLD}", "unknown", "ok")}
                <= set(transitions(r))
            )
        )
        tail = _late_and_repeated()
        await produce(d.bootstrap, prefixed(d.prefix, tail))
        sent = len(corpus) + len(healthy("dmm")) + len(tail)
        await wait_for(lambda: sum(worker.outcomes().values()) >= sent, timeout=60)
        await dead.until(lambda r: len(r) >= len(corpus), timeout=60)
        await alerts.settle(1.5)

    # each bad message: dead-lettered once, with its reason, its key and its original bytes
    letters = {}
    for record in dead.records:
        letter = json.loads(record.value)
        letters[(letter["topic"], letter["partition"], letter["offset"])] = (record.key, letter)
    assert len(letters) == len(dead.records) == len(corpus)
    for case, where in zip(corpus, landed, strict=True):
        key, letter = letters[(where.topic, where.partition, where.offset)]
        assert case.reason in letter["error"], (case.name, letter["error"])
        assert key == case.key, case.name
        original_key = None if letter["key_b64"] is None else base64.b64decode(letter["key_b64"])
        assert original_key == case.key, case.name
        assert base64.b64decode(letter["value_b64"]) == case.value, case.name
        assert letter["received_at"].endswith("Z")

    # each input message under exactly one outcome
    invalid = Counter(case.topic.value for case in corpus)
    assert worker.outcomes() == {
        (TRADES, "invalid"): invalid[TRADES],
        (TRADES, "applied"): 1,
        (TRADES, "duplicate"): 1,
        (TRADES, "stale"): 1,
        (WALLETS, "invalid"): invalid[WALLETS],
        (WALLETS, "applied"): 2,
        (WALLETS, "duplicate"): 1,
        (WALLETS, "stale"): 1,
        (LEDGER, "invalid"): invalid[LEDGER],
        (LEDGER, "applied"): 1,
        (LEDGER, "stale"): 1,
        (PRICES, "invalid"): invalid[PRICES],
        (PRICES, "applied"): 1,
        (PRICES, "duplicate"): 1,
        (PRICES, "stale"): 1,
    }
    assert sum(worker.outcomes().values()) == sent

    # the worker went on: the healthy exchange is judged, once, on the events it applied,
    # at the time they set: nothing dated ahead moved the clock, neither the wallet dated
    # 2099 (ahead of the worker's wall clock) nor the refused and repeated ones of July
    report = worker.status()["dmm"]
    assert report["as_of"].startswith("2024-05-31T")
    assert report["trading_volume"]["amount"] == "1250000"  # the late trade, counted once
    statuses = {rule["rule"]: rule["status"] for rule in report["rules"]}
    assert statuses[RESERVE] == statuses[COLD] == "ok"
    held = {rule["rule"]: rule for rule in report["rules"]}[COLD]
    assert held["ratio"] == "0.97"  # the stale 1 BTC snapshot replaced nothing
    assert transitions(alerts.records, RESERVE) == [(f"dmm/{RESERVE}", "unknown", "ok")]
    assert transitions(alerts.records, COLD) == [(f"dmm/{COLD}", "unknown", "ok")]
