"""Exactly once, and replay's verdicts, from the real worker on the real broker.

Each test compares what a ``read_committed`` reader of ``reserve.alerts`` sees
with what ``replay`` prints for the records the broker holds (read back with
their append timestamps, in the order the worker merges them: CONTRACT section
8). Equal lists of CloudEvents, ids and bytes included, mean no change lost,
none published twice and none that replay would not have made.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import random
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from monitor.core.engine import Engine
from monitor.core.events import Topic
from monitor.core.policy import load_policy
from monitor.replay import replay
from monitor.settings import Settings
from monitor.synthetic.scenarios import dmm_incident, steady
from monitor.synthetic.simulator import encode
from monitor.worker.alignment import BUFFERED_PER_PARTITION
from monitor.worker.output import Collector, task_producer
from monitor.worker.reading import CommittedSince
from monitor.worker.topics import INPUTS, ensure_topics
from tests.integration.harness import (
    Deployment,
    Reader,
    WorkerProcess,
    create_topic,
    produce_pipelined,
    uncommitted,
    wait_for,
)
from tests.unit.builders import EXCHANGE, trade, wallet
from tests.unit.builders import encode as encode_doc

pytestmark = pytest.mark.kafka

START = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
# How long a task waits for a partition that still has records, and the quiet gap that
# closes a moment (RESERVE_MONITOR_MAX_IDLE_SECONDS): 0.5 s, not the default 0.1 s. The
# suite runs test modules side by side on two cores, and a worker starved of CPU that
# long must still merge its partitions in append order; replay cuts the same gaps.
MAX_IDLE = 0.5


@pytest.fixture
def deployment(bootstrap: str) -> Deployment:
    return _deployment(bootstrap)


def _deployment(bootstrap: str) -> Deployment:
    return Deployment(bootstrap, env={"RESERVE_MONITOR_MAX_IDLE_SECONDS": str(MAX_IDLE)})


def _records(
    prefix: str, calm_exchanges: int = 3, calm_seconds: int = 900
) -> list[tuple[str, bytes, bytes]]:
    """The DMM incident beside steady exchanges: breaches, recoveries and calm."""
    incident = list(dmm_incident(START, seed=7, settle_minutes=10))
    calm = list(
        steady(
            START - timedelta(minutes=5), seed=3, exchanges=calm_exchanges, duration=calm_seconds
        )
    )
    merged = sorted(incident + calm, key=lambda r: r.value["ts"])
    return [encode(record, prefix) for record in merged]


async def _send(
    bootstrap: str, records: list[tuple[str, bytes, bytes]], chunk: int = 0, pause: float = 0.0
) -> None:
    """Produce in order; with ``chunk``, ``pause`` seconds after every ``chunk`` records."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = []
        for n, (topic, key, value) in enumerate(records, 1):
            sent.append(await producer.send(topic, value, key=key))
            if chunk and n % chunk == 0:
                await asyncio.gather(*sent)
                sent = []
                await asyncio.sleep(pause)
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _dump(d: Deployment) -> list[str]:
    """Every input record as a replay line with its timestamp, in the worker's merge order:
    append time, then the task's partition order (trades, wallet balances, ledger, then
    each prices partition), then offset."""
    ranked = [t.value for t in INPUTS]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=d.bootstrap, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(d.topic(t.value), p)
            for t in [*INPUTS, Topic.PRICES]
            for p in range(d.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        rows = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                name = tp.topic[len(d.prefix) :]
                rank = ranked.index(name) if name in ranked else len(ranked) + tp.partition
                for r in records:
                    line = {
                        "topic": name,
                        "key": r.key.decode(),
                        "value": json.loads(r.value),
                        "timestamp": r.timestamp,
                    }
                    rows.append(((r.timestamp, rank, r.offset), json.dumps(line)))
    finally:
        await consumer.stop()
    return [line for _, line in sorted(rows)]


def _settings(d: Deployment) -> Settings:
    environment = {
        "KAFKA_BOOTSTRAP_SERVERS": d.bootstrap,
        "RESERVE_MONITOR_TOPIC_PREFIX": d.prefix,
        "RESERVE_MONITOR_APP_ID": d.app_id,
        "RESERVE_MONITOR_PARTITIONS": str(d.partitions),
    }
    return Settings.model_validate(environment)


def _replayed(d: Deployment, lines: list[str], max_idle: float) -> list[dict[str, Any]]:
    out = io.StringIO()
    engine = Engine(load_policy(None), journal=False, max_idle=timedelta(seconds=max_idle))
    replay(lines, engine, out, app_id=d.app_id)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _by_subject(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each exchange and rule's changes in order (one exchange's alerts share a partition)."""
    subjects: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        subjects.setdefault(alert["subject"], []).append(alert)
    return subjects


async def _caught_up(d: Deployment, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    inputs = [t.value for t in INPUTS]
    while (left := await uncommitted(d, inputs)) > 0:
        assert time.monotonic() < deadline, f"{left} input records never committed"
        await asyncio.sleep(0.5)


async def _published(d: Deployment) -> list[dict[str, Any]]:
    """What a read_committed reader of reserve.alerts sees once the worker went quiet."""
    async with Reader(
        d.bootstrap, d.topic("reserve.alerts"), isolation_level="read_committed"
    ) as r:
        records = await r.settle(quiet=3.0)
    return [json.loads(record.value) for record in records]


async def _assert_as_replayed(d: Deployment, max_idle: float = MAX_IDLE) -> list[dict[str, Any]]:
    await _caught_up(d)
    await asyncio.sleep(1.0)  # the last quiet gaps close, and their commit
    published = await _published(d)
    expected = _replayed(d, await _dump(d), max_idle)
    assert any(a["data"]["status"] == "breach" for a in expected)  # the incident shows
    ids = [a["id"] for a in published]
    assert len(ids) == len(set(ids)), "a change published twice"
    got, want = _by_subject(published), _by_subject(expected)
    assert got == want, _difference(got, want)
    return published


def _difference(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> str:
    """The subjects whose changes differ, change by change, to read in a failure."""
    lines = []
    for subject in sorted(set(got) | set(want)):
        if got.get(subject) == want.get(subject):
            continue
        lines.append(f"{subject}:")
        for g, w in zip(got.get(subject, []), want.get(subject, []), strict=False):
            if g != w:
                keys = sorted(set(g["data"]) | set(w["data"]))
                differing = [k for k in keys if g["data"].get(k) != w["data"].get(k)]
                lines.append(f"  first difference in {differing}:")
                for k in differing:
                    lines.append(f"    published {k}: {json.dumps(g['data'].get(k))[:600]}")
                    lines.append(f"    replay    {k}: {json.dumps(w['data'].get(k))[:600]}")
                break
        for side, alerts in (
            ("published", got.get(subject, [])),
            ("replay", want.get(subject, [])),
        ):
            for a in alerts:
                d = a["data"]
                lines.append(
                    f"  {side}: {a['id'][:8]} {d['previous_status']}->{d['status']} "
                    f"as_of {d['as_of']} ratio {d.get('ratio')} "
                    f"{json.dumps(d.get('evidence'))[:300]}"
                )
    return "\n".join(lines)


async def test_a_backlog_and_a_live_feed_give_replays_changes(
    bootstrap: str, log_dir: Path
) -> None:
    live, backlog = _deployment(bootstrap), _deployment(bootstrap)
    worker = WorkerProcess(live, log_dir, "live").start()
    try:
        # live: chunks with pauses longer than the quiet gap, judged by the worker's clock
        await _send(bootstrap, _records(live.prefix), chunk=150, pause=0.25)
        await _assert_as_replayed(live)
    finally:
        worker.stop()
    await ensure_topics(_settings(backlog))  # as a worker would: co-partitioned, LogAppendTime
    await _send(bootstrap, _records(backlog.prefix), chunk=150, pause=0.25)
    worker = WorkerProcess(backlog, log_dir, "backlog").start()  # everything waits for it
    try:
        await _assert_as_replayed(backlog)
    finally:
        worker.stop()


async def test_a_large_backlog_is_merged_in_append_order(bootstrap: str, log_dir: Path) -> None:
    """Some 45,000 records waiting on one partition of each topic. The consumer hands out
    what it fetched one partition after another, 2,000 records at a time, so one
    partition's records wait in the consumer while another's are handed out. A task that
    waited for the first until the (short) max_idle passed would go on without it, out
    of append order, and publish changes replay does not make."""
    max_idle = 0.05
    d = Deployment(bootstrap, partitions=1, env={"RESERVE_MONITOR_MAX_IDLE_SECONDS": str(max_idle)})
    await ensure_topics(_settings(d))  # as a worker would: LogAppendTime
    await _send(bootstrap, _records(d.prefix, calm_exchanges=20, calm_seconds=2700))
    worker = WorkerProcess(d, log_dir, "backlog").start()  # everything waits for it
    try:
        await _assert_as_replayed(d, max_idle)
        # and the worker says so itself: no record taken after one appended later
        assert worker.sample("reserve_monitor_records_out_of_order_total") == 0
    finally:
        worker.stop()


async def test_records_of_a_transaction_still_open_keep_their_append_order(
    bootstrap: str, log_dir: Path
) -> None:
    """An upstream producer writes a trade in a transaction; a wallet snapshot of the same
    exchange (the same task) is appended after it, outside any transaction, and the
    transaction commits a second later. A ``read_committed`` reader sees the snapshot
    first, the trade only at the commit, with its earlier append time. The task must
    wait for the trade (its partition still holds records: an open transaction's, above
    the last stable offset), up to max_idle, and take it first."""
    d = Deployment(bootstrap, env={"RESERVE_MONITOR_MAX_IDLE_SECONDS": "10"})
    worker = WorkerProcess(d, log_dir, "open-txn").start()
    upstream = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{d.prefix}up")
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await upstream.start()
    await plain.start()
    try:
        await upstream.begin_transaction()
        first = await upstream.send_and_wait(
            d.topic(Topic.TRADES.value), encode_doc(trade()), key=EXCHANGE.encode()
        )
        await asyncio.sleep(1.0)
        second = await plain.send_and_wait(
            d.topic(Topic.WALLET_BALANCES.value), encode_doc(wallet("5")), key=EXCHANGE.encode()
        )
        assert second.partition == first.partition and second.timestamp > first.timestamp
        await asyncio.sleep(1.0)  # the snapshot in sight, the trade not
        await upstream.commit_transaction()

        def taken() -> int:
            return sum(worker.outcomes().values())

        await wait_for(lambda: taken() == 2, timeout=60)
        assert worker.sample("reserve_monitor_records_out_of_order_total") == 0
    finally:
        await upstream.stop()
        await plain.stop()
        worker.stop()


async def test_a_transaction_committed_since_the_last_fetch_answer_is_seen_from_the_broker(
    bootstrap: str,
) -> None:
    """A consumer's last fetch answer may still show an upstream transaction open after it
    has committed; the broker's last stable offset shows its records committed, and
    nothing beyond once they are read."""
    d = _deployment(bootstrap)
    await ensure_topics(_settings(d))
    tp = TopicPartition(d.topic(Topic.TRADES.value), 0)
    upstream = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{d.prefix}up")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await upstream.start()
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        await upstream.begin_transaction()
        await upstream.send_and_wait(tp.topic, encode_doc(trade()), partition=0)
        assert not await CommittedSince().since(consumer, tp)  # open: nothing committed
        await upstream.commit_transaction()
        assert await CommittedSince().since(consumer, tp)  # committed, not fetched yet
        read = await consumer.getmany(tp, timeout_ms=10_000)
        assert len(read[tp]) == 1
        await wait_for(lambda: consumer.last_stable_offset(tp) == 2, timeout=10)
        await consumer.getmany(tp, timeout_ms=1_000)  # past the commit marker
        assert not await CommittedSince().since(consumer, tp)  # all of it read
    finally:
        await consumer.stop()
        await upstream.stop()


async def test_a_task_kept_waiting_holds_a_bounded_part_of_a_backlog_in_memory(
    bootstrap: str, log_dir: Path
) -> None:
    """A trade in an upstream transaction left open holds its task back (the trade may
    come first: up to max_idle, long here) while 20,000 wallet snapshots of the same
    exchange, appended after it, are committed. The worker keeps fetching meanwhile; it
    pauses the full partition instead of holding the whole backlog in memory. When the
    transaction commits, every record is taken, in append order, none lost to the pause."""
    snapshots = 20_000
    d = Deployment(bootstrap, env={"RESERVE_MONITOR_MAX_IDLE_SECONDS": "120"})
    worker = WorkerProcess(d, log_dir, "held").start()
    upstream = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{d.prefix}up")
    await upstream.start()
    try:
        await upstream.begin_transaction()
        await upstream.send_and_wait(
            d.topic(Topic.TRADES.value), encode_doc(trade()), key=EXCHANGE.encode()
        )
        start = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
        await produce_pipelined(
            bootstrap,
            (
                (
                    d.topic(Topic.WALLET_BALANCES.value),
                    EXCHANGE.encode(),
                    encode_doc(wallet("5", when=start + timedelta(seconds=n), event_id=f"w{n}")),
                )
                for n in range(snapshots)
            ),
        )

        def of_snapshots(metric: str) -> float:  # their partition's: the other holds none
            series = worker.counts(metric, "topic", "partition")
            return max(n for (topic, _), n in series.items() if topic == Topic.WALLET_BALANCES)

        def buffered() -> float:
            return of_snapshots("reserve_monitor_buffered_records")

        await wait_for(lambda: buffered() >= BUFFERED_PER_PARTITION, timeout=60)
        for _ in range(10):  # turns after turns of fetching: the partition stays paused
            await asyncio.sleep(0.3)
            assert BUFFERED_PER_PARTITION <= buffered() < BUFFERED_PER_PARTITION + 2_000
        assert sum(worker.outcomes().values()) == 0  # the open transaction holds all back
        # the lag still counts every snapshot, though the paused partition is not fetched
        assert of_snapshots("reserve_monitor_consumer_lag_records") == snapshots

        await upstream.commit_transaction()
        await wait_for(lambda: sum(worker.outcomes().values()) == snapshots + 1, timeout=120)
        assert worker.outcomes() == {
            (Topic.TRADES.value, "applied"): 1,
            (Topic.WALLET_BALANCES.value, "applied"): snapshots,
        }
        assert worker.sample("reserve_monitor_records_out_of_order_total") == 0
    finally:
        await upstream.stop()
        worker.stop()


async def test_a_worker_killed_at_any_point_publishes_each_change_exactly_once(
    deployment: Deployment, log_dir: Path
) -> None:
    worker = WorkerProcess(deployment, log_dir).start()
    records = _records(deployment.prefix)
    sending = asyncio.create_task(_send(deployment.bootstrap, records, chunk=50, pause=0.1))
    rng = random.Random(11)
    kills = 0
    try:
        while not sending.done() and kills < 4:
            await asyncio.sleep(rng.uniform(0.5, 2.5))
            worker.kill()  # SIGKILL: no commit, no goodbye to the group
            kills += 1
            worker.start(timeout=90)
        await sending
        assert kills >= 2, "the feed ended before the worker was killed twice"
        await _assert_as_replayed(deployment)
    finally:
        sending.cancel()
        worker.stop()


async def test_a_fenced_task_s_commit_fails_and_its_failed_deliveries_are_not_logged_again(
    deployment: Deployment,
) -> None:
    # a task's changelog and records are on their way when a newer owner of the task fences
    # it: the producer fails every delivery, and the commit says so; asyncio must not log
    # a failed delivery again as an unretrieved error with the producer's traceback
    unhandled: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: unhandled.append(context))
    topic = deployment.prefix + "out"
    await create_topic(deployment.bootstrap, topic, 1)
    client = {"bootstrap_servers": deployment.bootstrap}
    app = deployment.prefix + "app"
    first = Collector(task_producer(app, 0, client), app, topic, 0)
    second = Collector(task_producer(app, 0, client), app, topic, 0)
    await first.start()
    try:
        await second.start()  # fences the first
        first.write([(f"dmm/wallet/{n}", {"balance": str(n)}) for n in range(50)])  # in batches
        for n in range(50):
            first.send(topic, b"dmm", f"record {n}".encode())
        first.start_commit()
        with pytest.raises(Exception, match=r"(?i)fenced"):
            await first.end_commit()
    finally:
        await first.close()
        await second.close()
    gc.collect()  # a failure never retrieved is logged when its future is freed
    await asyncio.sleep(0)
    assert not [c for c in unhandled if "never retrieved" in c.get("message", "")], unhandled


async def test_a_paused_worker_is_fenced_when_it_resumes_and_writes_nothing_more(
    deployment: Deployment, log_dir: Path
) -> None:
    first = WorkerProcess(deployment, log_dir, "first").start()
    second = WorkerProcess(deployment, log_dir, "second").start()
    records = _records(deployment.prefix)
    half = len(records) // 2
    try:
        await _send(deployment.bootstrap, records[:half], chunk=100, pause=0.05)
        assert first.process is not None
        first.process.send_signal(signal.SIGSTOP)  # past the session timeout (6 s)
        await asyncio.sleep(1.0)
        sending = asyncio.create_task(
            _send(deployment.bootstrap, records[half:], chunk=100, pause=0.05)
        )
        await asyncio.sleep(12.0)  # the group moves the first worker's tasks to the second
        first.process.send_signal(signal.SIGCONT)
        await sending
        await _assert_as_replayed(deployment)
        log = first.log(400)
        assert "fenced" in log, log
    finally:
        if first.process is not None and first.process.poll() is None:
            first.process.send_signal(signal.SIGCONT)
        first.stop()
        second.stop()
