"""``report --from-topic``: a running deployment's input, read from Kafka as replay lines.

The deployment is the one the environment names, as for the worker
(``KAFKA_BOOTSTRAP_SERVERS``, its security settings, ``RESERVE_MONITOR_TOPIC_PREFIX``).
Every partition of ``exchange.trades``, ``exchange.wallet-balances``,
``exchange.ledger`` and ``market.prices`` is read with ``read_committed`` from
its first record to the end it had when the read began, outside any consumer
group, so nothing of the deployment moves. The records are put in the order a
worker takes them (CONTRACT section 8): record timestamp, then topic (in that
order), then partition and offset. Each keeps its timestamp, so the report's
judgments cut quiet gaps by append time as the worker does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from monitor.core.errors import SourceError
from monitor.core.events import Topic
from monitor.core.events.lines import RecordLine
from monitor.replay import Line, record_line

# the order of topics at equal timestamps: the worker's partition group ranks the
# input topics first, in this order, then the prices
_ORDER = (Topic.TRADES, Topic.WALLET_BALANCES, Topic.LEDGER, Topic.PRICES)
_POLL_MS = 500
_IDLE_POLLS = 20  # this many empty polls in a row with records still due: the read is stuck


def topic_lines() -> list[Line]:
    """Every input record of the deployment up to now, in the worker's order."""
    return asyncio.run(read_topic_lines())


async def read_topic_lines() -> list[Line]:
    """`topic_lines`, in a running event loop."""
    try:
        return await _read()
    except SourceError:
        raise
    except Exception as error:  # the broker: unreachable, refused
        raise SourceError(f"cannot read the deployment's topics: {error!r}") from None


async def _read() -> list[Line]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from monitor.settings import Settings
    from monitor.worker.connection import aiokafka_security

    settings = Settings()
    names = {settings.topic(topic.value): topic for topic in _ORDER}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
        **aiokafka_security(settings),
    )
    await consumer.start()
    try:
        counts = await _partition_counts(settings, list(names))
        missing = sorted(name for name in names if not counts.get(name))
        if missing:
            where = settings.kafka_bootstrap_servers
            raise SourceError(f"no topic {', '.join(missing)} on {where}: is the prefix right?")
        partitions = [TopicPartition(name, n) for name in names for n in range(counts[name])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        due = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
        keyed: list[tuple[int, int, int, int, RecordLine]] = []
        idle = 0
        while due:
            batch = await consumer.getmany(*due, timeout_ms=_POLL_MS)
            idle = 0 if batch else idle + 1
            if idle >= _IDLE_POLLS:
                raise SourceError(f"the read of {sorted(str(tp) for tp in due)} made no progress")
            for tp, records in batch.items():
                topic = names[tp.topic]
                for record in records:
                    if record.offset < ends[tp]:
                        keyed.append(_keyed(topic, tp.partition, record))
            for tp in list(due):  # past transaction markers, the position reaches the end
                if await consumer.position(tp) >= ends[tp]:
                    due.discard(tp)
    finally:
        await consumer.stop()
    keyed.sort(key=lambda item: item[:4])
    return [record_line(number, record) for number, (*_, record) in enumerate(keyed, start=1)]


async def _partition_counts(settings: Any, names: list[str]) -> dict[str, int]:
    """How many partitions each topic of ``names`` has (0: none, or no such topic)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from monitor.worker.connection import aiokafka_security

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_security(settings)
    )
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described if not d["error_code"]}


def _keyed(topic: Topic, partition: int, record: Any) -> tuple[int, int, int, int, RecordLine]:
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    value = record.value if record.value is not None else b""
    at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    line = RecordLine(topic, key, value, at)
    return (record.timestamp, _ORDER.index(topic), partition, record.offset, line)
