"""Faults on the real broker: a worker dies in a group, the broker restarts, a burst arrives.

Each test counts what went in against what the workers did with it: no status
change lost, none re-opened, no event applied twice or left out.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from monitor.synthetic.scenarios import steady
from monitor.synthetic.simulator import encode
from monitor.worker.topics import INPUTS
from tests.integration.conftest import TEST_PORT
from tests.integration.harness import (
    Deployment,
    LocalBroker,
    Reader,
    WorkerProcess,
    events,
    free_port,
    partition_of,
    produce,
    produce_pipelined,
    rss_bytes,
    uncommitted,
    wait_for,
)
from tests.integration.story import TRADES, fund, healthy, prefixed, trade

pytestmark = pytest.mark.kafka

RESERVE = "jp.liability_reserve"
# ¥1.2 tn of volume at 0.5% lifts the floor to ¥6 bn, over a healthy exchange's ¥5 bn fund
SURGE = "1200000000000"
SURGE_TS = "2024-05-31T13:10:00Z"
START = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)


def _exchanges_on_every_partition(partitions: int, per_partition: int = 2) -> list[str]:
    """Exchange ids that fill every partition (the default partitioner's placement)."""
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(ids) < per_partition for ids in chosen.values()):
        exchange = f"venue-{n}"
        ids = chosen[partition_of(exchange, partitions)]
        if len(ids) < per_partition:
            ids.append(exchange)
        n += 1
    return sorted(ex for ids in chosen.values() for ex in ids)


def _history(records: list[Any]) -> dict[str, list[tuple[str, str]]]:
    """Each subject's changes, once per CloudEvent id (a re-emitted change is the same one)."""
    unique: dict[str, dict[str, Any]] = {}
    for event in events(records):
        held = unique.setdefault(event["id"], event)
        # the same change re-emitted may be measured at a later clock; it is the same change
        assert _change(held) == _change(event), "one id, two different changes"
    history: dict[str, list[tuple[str, str]]] = {}
    for event in unique.values():
        data = event["data"]
        history.setdefault(event["subject"], []).append((data["previous_status"], data["status"]))
    return history


async def wait_until_committed(d: Deployment) -> None:
    """Until the group has committed every record of the input topics keyed by exchange.

    (market.prices is read outside the group: each task keeps its position in its changelog.)
    """
    inputs = [t.value for t in INPUTS]
    deadline = asyncio.get_running_loop().time() + 30
    while (left := await uncommitted(d, inputs)) > 0:
        assert asyncio.get_running_loop().time() < deadline, f"{left} records uncommitted"
        await asyncio.sleep(0.5)


def _change(event: dict[str, Any]) -> tuple[str, str, str]:
    return event["subject"], event["data"]["previous_status"], event["data"]["status"]


@pytest.fixture
def second_worker(deployment: Deployment, log_dir: Path) -> Iterator[WorkerProcess]:
    """Another worker in the same group as ``worker``."""
    process = WorkerProcess(deployment, log_dir, name="second").start()
    try:
        yield process
    finally:
        process.stop()


async def test_two_workers_share_the_exchanges_and_one_takes_over_when_the_other_dies(
    deployment: Deployment, worker: WorkerProcess, second_worker: WorkerProcess
) -> None:
    d = deployment
    exchanges = _exchanges_on_every_partition(d.partitions)
    workers = (worker, second_worker)
    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        setup = [record for ex in exchanges for record in healthy(ex)]
        await produce(d.bootstrap, prefixed(d.prefix, setup))

        def owned() -> list[set[str]]:
            return [set(w.status()) for w in workers]

        # every exchange judged by exactly one worker
        await wait_for(lambda: set().union(*owned()) == set(exchanges), timeout=60)
        first, second = owned()
        assert first and second and not first & second

        # one exchange of the first worker in breach, then the first worker dies
        victim, other = sorted(first)[:2]
        await produce(
            d.bootstrap, prefixed(d.prefix, [trade(1, victim, SURGE, "2024-05-31T13:10:00Z")])
        )
        await wait_for(lambda: worker.rule_status(victim, RESERVE) == "breach")
        # killed once it has committed what it consumed: its state can only come back
        # through the changelog, not by consuming the same input again
        await wait_until_committed(d)
        worker.kill()
        # while no one owns its partitions, another of its exchanges changes
        await produce(
            d.bootstrap, prefixed(d.prefix, [trade(1, other, SURGE, "2024-05-31T13:10:00Z")])
        )

        # the second worker takes over every exchange with its state: the victim's from the
        # changelog, the other's surge (sent while no one owned it) from the input topic
        def taken_over(exchange: str) -> bool:
            report = second_worker.status().get(exchange)
            return report is not None and report["trading_volume"]["amount"] == SURGE

        await wait_for(lambda: set(second_worker.status()) == set(exchanges), timeout=90)
        await wait_for(lambda: taken_over(victim) and taken_over(other), timeout=30)
        # the status follows the state at the worker's next settle
        for exchange in (victim, other):
            await wait_for(lambda ex=exchange: second_worker.rule_status(ex, RESERVE) == "breach")
        # ...and goes on from it: a top-up closes the breach opened before the crash
        await produce(
            d.bootstrap, prefixed(d.prefix, [fund(2, victim, "9000000000", "2024-05-31T14:00:00Z")])
        )
        await wait_for(lambda: second_worker.rule_status(victim, RESERVE) == "ok")
        await alerts.until(
            lambda r: ("breach", "ok") in _history(r).get(f"{victim}/{RESERVE}", []), timeout=30
        )
        await alerts.settle(2.0)

    history = _history(alerts.records)
    assert history[f"{victim}/{RESERVE}"] == [("unknown", "ok"), ("ok", "breach"), ("breach", "ok")]
    assert history[f"{other}/{RESERVE}"] == [("unknown", "ok"), ("ok", "breach")]
    for ex in set(exchanges) - {victim, other}:
        assert history[f"{ex}/{RESERVE}"] == [("unknown", "ok")]


# A broker of the test's own, so the session broker is never stopped: by default two
# ports above the session broker's (whose controller takes the one between), and its
# controller on a free port.
FAULT_PORT = int(os.environ.get("TEST_KAFKA_FAULT_PORT", int(TEST_PORT) + 2))


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    broker = LocalBroker(
        FAULT_PORT,
        controller_port=int(os.environ.get("TEST_KAFKA_FAULT_CONTROLLER_PORT", 0)) or free_port(),
    )
    broker.down(wipe=True)  # whatever an interrupted run left behind
    broker.up()
    try:
        yield broker
    finally:
        broker.down(wipe=True)


class TradeStream:
    """Trades of a few exchanges, sent as fast as asked, each one remembered."""

    def __init__(self, prefix: str, exchanges: int = 4) -> None:
        self.prefix = prefix
        self.exchanges = [f"load-{n}" for n in range(exchanges)]
        self.sent: list[asyncio.Future[Any]] = []
        self.volume: Counter[str] = Counter()

    async def send(self, producer: AIOKafkaProducer, count: int, pause: float = 0.0) -> None:
        for _ in range(count):
            n = len(self.sent)
            exchange = self.exchanges[n % len(self.exchanges)]
            ts = f"2024-05-31T13:{n // 60 % 60:02d}:{n % 60:02d}Z"
            _, _, value = trade(n, exchange, str(n + 1), ts)
            self.volume[exchange] += n + 1
            future = await producer.send(
                self.prefix + TRADES, json.dumps(value).encode(), key=exchange.encode()
            )
            self.sent.append(future)
            if pause:
                await asyncio.sleep(pause)


async def test_the_worker_reconnects_after_a_broker_restart_and_loses_nothing(
    own_broker: LocalBroker, log_dir: Path
) -> None:
    d = Deployment(own_broker.bootstrap)
    worker = WorkerProcess(d, log_dir).start()
    # retries for as long as the broker may be away; idempotence: a retry is not a copy
    producer = AIOKafkaProducer(
        bootstrap_servers=d.bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=120_000,
        retry_backoff_ms=250,
    )
    await producer.start()
    stream = TradeStream(d.prefix)
    try:
        await stream.send(producer, 300, pause=0.01)  # before
        await wait_for(lambda: _applied(worker) >= 300, timeout=60)
        during = asyncio.create_task(stream.send(producer, 300, pause=0.02))
        await asyncio.to_thread(own_broker.down)  # under load
        await asyncio.sleep(3)  # the worker and the producer see the broker gone
        await asyncio.to_thread(own_broker.up)
        await during
        await stream.send(producer, 300, pause=0.01)  # after
        await asyncio.gather(*stream.sent)  # every one delivered, after retries
        sent = len(stream.sent)

        # the worker reconnects and catches up: each trade applied once, none left out
        await wait_for(lambda: _applied(worker) >= sent, timeout=120)
        await wait_for(lambda: worker.get("/healthz")["healthy"], timeout=60)
        outcomes = worker.outcomes()
        volumes = {ex: Decimal(r["trading_volume"]["amount"]) for ex, r in worker.status().items()}
    finally:
        await producer.stop()
        worker.stop()
    assert outcomes[(TRADES, "applied")] == sent == 900
    # a trade consumed again after the reconnection (its offset not yet committed) is a
    # duplicate: counted, never applied twice
    assert set(outcomes) <= {(TRADES, "applied"), (TRADES, "duplicate")}
    assert volumes == {ex: Decimal(total) for ex, total in stream.volume.items()}
    # the client's errors while the broker was away are held back, not a flood
    errors = [line for line in worker.log_path.read_text().splitlines() if "[ERROR]" in line]
    assert 0 < len(errors) < 300, f"{len(errors)} error lines"


async def test_healthz_answers_503_while_the_broker_is_away_and_200_once_it_is_back(
    own_broker: LocalBroker, log_dir: Path
) -> None:
    d = Deployment(own_broker.bootstrap)
    worker = WorkerProcess(d, log_dir).start()
    # the worker judges its consumer cut off after this long without a fetch answer
    limit = float(worker.env()["RESERVE_MONITOR_SESSION_TIMEOUT"])
    try:
        # idle, not one input record, for twice that long: empty fetch answers keep it healthy
        idle_until = time.monotonic() + 2 * limit
        while time.monotonic() < idle_until:
            assert worker.health() == (200, {"healthy": True})
            await asyncio.sleep(0.5)

        await asyncio.to_thread(own_broker.down)
        status, body = await wait_for(
            lambda: (answer := worker.health())[0] != 200 and answer, timeout=60
        )
        assert status == 503 and body["healthy"] is False
        assert body["reason"].startswith("cut off from Kafka: no answer from a broker"), body
        # not consuming, yet alive: a liveness probe must not restart it for the outage
        assert worker.get("/livez") == {"healthy": True}

        await asyncio.to_thread(own_broker.up)
        # it reconnects, rejoins its group (a rebalance: 503 meanwhile) and consumes again
        await wait_for(lambda: worker.health() == (200, {"healthy": True}), timeout=120)
    finally:
        worker.stop()


def _applied(worker: WorkerProcess) -> int:
    return worker.outcomes().get((TRADES, "applied"), 0)


async def test_a_worker_killed_under_load_restarts_with_every_event_applied_once(
    deployment: Deployment, log_dir: Path
) -> None:
    d = deployment
    worker = WorkerProcess(d, log_dir).start()
    stream = TradeStream(d.prefix)
    producer = AIOKafkaProducer(bootstrap_servers=d.bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        await stream.send(producer, 6000)
        await asyncio.gather(*stream.sent)
        await wait_for(lambda: _applied(worker) >= 2000, timeout=60, every=0.05)
        worker.kill()  # mid-stream, with journal writes and offsets in flight
        worker.start()
        await stream.send(producer, 1000)
        await asyncio.gather(*stream.sent)
        sent = len(stream.sent)

        def volumes() -> dict[str, Decimal]:
            status = worker.status()
            return {ex: Decimal(r["trading_volume"]["amount"]) for ex, r in status.items()}

        expected = {ex: Decimal(total) for ex, total in stream.volume.items()}
        # every trade applied once, counted across both lives of the worker
        try:
            await wait_for(lambda: volumes() == expected, timeout=60)
        except AssertionError:  # say which exchange is off, by how much, and where to look
            raise AssertionError(
                f"trading volumes {volumes()}, sent {expected}; outcomes since the restart "
                f"{worker.outcomes()}; worker log {worker.log_path}"
            ) from None
    finally:
        await producer.stop()
        worker.stop()
    assert sent == 7000


# The burst's size: 100,000 by default; set TEST_BURST_EVENTS for a quicker run.
BURST_EVENTS = int(os.environ.get("TEST_BURST_EVENTS", "100000"))
# Generous: a worker holding the state of 20 exchanges needs a small part of it.
RSS_LIMIT = 1024 * 1024 * 1024


async def test_a_burst_is_processed_whole_in_bounded_memory(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    d = deployment
    stream = steady(START, 3, exchanges=20, duration=None)
    burst = [encode(record, d.prefix) for record in itertools.islice(stream, BURST_EVENTS)]
    assert worker.process is not None
    pid = worker.process.pid
    samples: list[tuple[int, int]] = []  # (messages accounted for, RSS)

    def sample() -> int:
        done = sum(worker.outcomes().values())
        samples.append((done, rss_bytes(pid)))
        return done

    started = time.monotonic()
    sent = await produce_pipelined(d.bootstrap, burst)
    produced = time.monotonic()
    while sample() < sent:
        await asyncio.sleep(1.0)
    drained = time.monotonic()
    for _ in range(5):  # the worker idles after the burst: its memory must settle
        await asyncio.sleep(1.0)
        sample()

    outcomes = worker.outcomes()
    print(
        f"\nburst of {sent} events: produced in {produced - started:.1f} s, "
        f"drained {drained - started:.1f} s after the first send; "
        f"RSS peak {max(rss for _, rss in samples) / 2**20:.0f} MiB; outcomes {outcomes}"
    )
    assert sum(outcomes.values()) == sent == BURST_EVENTS
    # Input topics are consumed side by side: a USDT trade read before the first USDT
    # price waits for it rather than being refused, so nothing goes to the dead letters
    assert not [key for key in outcomes if key[1] == "invalid"], outcomes
    assert max(rss for _, rss in samples) < RSS_LIMIT
    at_drain = next(rss for done, rss in samples if done >= sent)
    assert samples[-1][1] <= at_drain * 1.1, "memory kept growing after the burst"
