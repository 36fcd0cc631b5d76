"""How the worker writes its journal: flushes that overlap never reorder a key's values.

The settle and the tick timers both flush the journal. A flush yields at each
send while the producer's batch for a partition is full, so without care a
later flush could overtake an earlier one and the changelog would end on a
key's older value, the state a restart recovers. The producer here records
what it is given and yields at every send, as a busy one does; the order the
changelog would receive is what it records.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from monitor.core.engine import Step, journal_key
from monitor.core.policy import load_policy
from monitor.settings import Settings
from monitor.worker.app import Monitor, create_app


class YieldingProducer:
    """Records each send in order, and lets other tasks run at each one."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, Any]] = []

    async def send(self, topic: str, key: bytes, value: bytes | None, *_: Any) -> None:
        self.sent.append((topic, json.loads(key), None if value is None else json.loads(value)))
        await asyncio.sleep(0)

    async def flush(self) -> None:
        await asyncio.sleep(0)


class Acked:
    """An input record as the worker holds it: it remembers being acknowledged."""

    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


def worker() -> tuple[Monitor, YieldingProducer]:
    monitor = create_app(Settings(), load_policy())
    producer = YieldingProducer()
    monitor.app.producer = producer  # type: ignore[assignment]
    return monitor, producer


def bucket(n: int) -> str:
    return journal_key("volume", "dmm", n)


async def test_a_later_flush_never_writes_a_key_before_an_earlier_flush_does() -> None:
    monitor, producer = worker()
    # a big first flush (the key last), then a small one carrying the key's newer value
    monitor.pending = {bucket(n): {"amount": "1"} for n in range(1, 50)}
    monitor.pending[bucket(0)] = {"amount": "100"}
    first = asyncio.create_task(monitor._commit(Step()))
    await asyncio.sleep(0)  # the first flush is under way
    monitor.pending = {bucket(0): {"amount": "250"}}
    await asyncio.gather(first, monitor._commit(Step()))

    changelog = monitor.state.changelog_topic.get_topic_name()
    written = [value for topic, key, value in producer.sent if key == bucket(0)]
    assert all(topic == changelog for topic, _, _ in producer.sent)
    assert written == [{"amount": "100"}, {"amount": "250"}]  # the newest lands last
    assert monitor.state.data[bucket(0)] == {"amount": "250"}


async def test_records_are_acknowledged_only_after_their_own_flush() -> None:
    monitor, producer = worker()
    early, late = Acked(), Acked()
    monitor.pending = {bucket(n): {"amount": "1"} for n in range(20)}
    monitor.unacked = [early]  # type: ignore[list-item]
    first = asyncio.create_task(monitor._commit(Step()))
    await asyncio.sleep(0)
    monitor.pending, monitor.unacked = {bucket(99): {"amount": "5"}}, [late]  # type: ignore[list-item]
    second = asyncio.create_task(monitor._commit(Step()))
    while not first.done():
        # the later record waits while the earlier flush, which it may build on, is unsent
        assert not late.acked
        await asyncio.sleep(0)
    await second
    assert early.acked and late.acked
    assert [key for _, key, _ in producer.sent][-1] == bucket(99)


async def test_a_rebuild_waits_for_the_flush_under_way() -> None:
    monitor, _ = worker()
    monitor.pending = {bucket(n): {"amount": "1"} for n in range(30)}
    flush = asyncio.create_task(monitor._commit(Step()))
    await asyncio.sleep(0)
    monitor.app.assignor.assigned_actives = lambda: set()  # type: ignore[method-assign]
    await monitor._rebuild()  # reads the tables: they must hold the whole flush
    assert flush.done()


async def test_each_flush_record_carries_its_exchange_entries_whole_and_no_others() -> None:
    monitor, producer = worker()
    monitor.pending = {
        bucket(1): {"amount": "7"},
        bucket(2): None,  # a bucket that left the window: deleted, in the flush too
        journal_key("volume", "coincheck", 1): {"amount": "3"},
        journal_key("price", "BTC"): {"price": "10700000"},
    }
    await monitor._commit(Step())

    flushes = {key: value for _, key, value in producer.sent if json.loads(key)[0] == "flush"}
    assert flushes == {
        journal_key("flush", "dmm"): {"entries": {bucket(1): {"amount": "7"}, bucket(2): None}},
        journal_key("flush", "coincheck"): {
            "entries": {journal_key("volume", "coincheck", 1): {"amount": "3"}}
        },
    }
    # each whole record precedes its entries, and the table holds what was sent
    order = [key for _, key, _ in producer.sent]
    assert order.index(journal_key("flush", "dmm")) < order.index(bucket(1))
    assert monitor.state.data[journal_key("flush", "dmm")] == flushes[journal_key("flush", "dmm")]
    assert monitor.prices.data[journal_key("price", "BTC")] == {"price": "10700000"}
