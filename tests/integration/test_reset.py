"""``reserve-monitor reset`` on the real broker: offsets rewound, changelogs gone, refusals."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from monitor.settings import Settings
from monitor.worker.reset import reset
from monitor.worker.topics import INPUTS, ensure_topics
from tests.integration.harness import (
    ROOT,
    Deployment,
    Reader,
    WorkerProcess,
    events,
    produce,
    transitions,
    uncommitted,
)
from tests.integration.story import healthy, prefixed, trade

pytestmark = pytest.mark.kafka

RESERVE = "jp.liability_reserve"
FAUST_TOPICS = ("state-changelog", "prices-changelog", "__assignor-__leader")


def _reset_command(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``reserve-monitor reset`` with the worker's settings (prefix, app id, brokers)."""
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", "reset", *args],
        cwd=ROOT,
        env=worker.env(),
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


async def _run_reset(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_reset_command, worker, *args)


def _inputs(d: Deployment) -> list[TopicPartition]:
    return [TopicPartition(d.topic(t.value), p) for t in INPUTS for p in range(d.partitions)]


async def _committed(d: Deployment) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=d.bootstrap)
    await admin.start()
    try:
        held = await admin.list_consumer_group_offsets(d.app_id, partitions=_inputs(d))
        return {tp: meta.offset for tp, meta in held.items()}
    finally:
        await admin.close()


async def _topics(d: Deployment) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=d.bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _wait_until_committed(d: Deployment) -> None:
    inputs = [t.value for t in INPUTS]
    deadline = asyncio.get_running_loop().time() + 30
    while (left := await uncommitted(d, inputs)) > 0:
        assert asyncio.get_running_loop().time() < deadline, f"{left} records uncommitted"
        await asyncio.sleep(0.5)


def _ids(records: list[Any]) -> list[str]:
    return [event["id"] for event in events(records)]


async def test_reset_rewinds_the_group_deletes_its_changelogs_and_the_workers_reprocess(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    d = deployment
    changelog = f"{d.app_id}-journal-changelog"
    faust = [f"{d.app_id}-{suffix}" for suffix in FAUST_TOPICS]  # left by a Faust worker
    admin = AIOKafkaAdminClient(bootstrap_servers=d.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in faust])
    finally:
        await admin.close()

    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm")))
        surge = trade(1, "dmm", "1200000000000", "2024-05-31T13:10:00Z")
        await produce(d.bootstrap, prefixed(d.prefix, [surge]))
        await alerts.until(lambda r: (f"dmm/{RESERVE}", "ok", "breach") in transitions(r))
        await _wait_until_committed(d)
        await alerts.settle(1.0)
        first = _ids(alerts.records)
        before = await _committed(d)
        assert sum(before.values()) > 0

        refused = await _run_reset(worker, "--application-id", d.app_id)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "active member" in refused.stderr
        assert await _committed(d) == before
        assert changelog in await _topics(d)

        worker.stop()
        dry = await _run_reset(worker, "--application-id", d.app_id, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert f"would delete: {', '.join([changelog, *faust])}" in dry.stdout
        assert dry.stdout.splitlines()[-1] == "dry run: nothing changed"
        assert await _committed(d) == before
        assert {changelog, *faust} <= await _topics(d)

        done = await _run_reset(worker, "--application-id", d.app_id)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        for tp in _inputs(d):
            old = before.get(tp, -1)
            assert f"  {tp.topic}[{tp.partition}]: {old if old >= 0 else 'none'} -> 0" in lines
        assert lines[-1] == f"deleted: {', '.join([changelog, *faust])}"
        assert await _committed(d) == dict.fromkeys(_inputs(d), 0)
        assert not {changelog, *faust} & await _topics(d)

        # a new worker rebuilds its state from the input topics and publishes the same
        # changes again, with the same ids: a reader de-duplicates by id
        worker.start()
        await alerts.until(lambda r: len(r) >= 2 * len(first))
        await _wait_until_committed(d)
        await alerts.settle(1.0)
        again = _ids(alerts.records)[len(first) :]
        assert again == first


async def test_reset_to_a_time_takes_each_partition_from_its_first_record_appended_after_it(
    deployment: Deployment,
) -> None:
    d = deployment
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS=d.bootstrap,
        RESERVE_MONITOR_TOPIC_PREFIX=d.prefix,
        RESERVE_MONITOR_APP_ID=d.app_id,
        RESERVE_MONITOR_PARTITIONS=d.partitions,
    )
    await ensure_topics(settings)  # input topics stamp records with LogAppendTime
    exchanges = [f"venue-{n}" for n in range(8)]  # spread over both partitions by key
    before_cut = [trade(n, ex, "1", "2024-05-31T13:00:00Z") for n, ex in enumerate(exchanges)]
    after_cut = [
        trade(100 + n, ex, "1", "2024-05-31T14:00:00Z") for n, ex in enumerate(exchanges[:3])
    ]
    earlier = await produce(d.bootstrap, prefixed(d.prefix, before_cut))
    # the broker stamps append times with this machine's clock: the cut falls between the two
    await asyncio.sleep(1.0)
    cut = datetime.now(UTC)
    await asyncio.sleep(1.0)
    later = await produce(d.bootstrap, prefixed(d.prefix, after_cut))

    plan = await reset(settings, d.app_id, to=cut)

    trades = [tp for tp in _inputs(d) if tp.topic == d.topic("exchange.trades")]
    ends = {tp: 0 for tp in _inputs(d)}
    for landed in [*earlier, *later]:
        tp = TopicPartition(landed.topic, landed.partition)
        ends[tp] = max(ends[tp], landed.offset + 1)
    first_after = {}
    for landed in later:
        tp = TopicPartition(landed.topic, landed.partition)
        first_after[tp] = min(first_after.get(tp, landed.offset), landed.offset)
    expected = {tp: first_after.get(tp, ends[tp]) for tp in _inputs(d)}
    assert plan.offsets == expected
    assert any(expected[tp] < ends[tp] for tp in trades)  # some records are taken again
    assert await _committed(d) == expected
    assert plan.deletions == (f"{d.app_id}-journal-changelog",)
    assert f"{d.app_id}-journal-changelog" not in await _topics(d)
    # a consumer of the group starts where the reset left it
    consumer = AIOKafkaConsumer(
        bootstrap_servers=d.bootstrap, group_id=d.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(trades)
        assert {tp: await consumer.position(tp) for tp in trades} == {
            tp: expected[tp] for tp in trades
        }
    finally:
        await consumer.stop()
