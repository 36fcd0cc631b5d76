"""Each task's state in a compacted changelog topic, and its restore.

A task's engine journals the state it changes as entries: a key
(``journal_key``, e.g. ``["volume","dmm",478000]``) and a JSON document, or None
to delete it (:mod:`monitor.core.state.journal`). The task writes each key
changed since its last commit once, in the commit's transaction, to partition
``task`` of ``<app id>-journal-changelog``; compaction keeps the newest value
of each key, so a restore reads about as many records as the state has keys,
whatever the number of events that made it.

Beside the engine's entries the task keeps one of its own: its position in
``market.prices`` (:data:`PRICES_POSITION`), committed with the state, so that
a restored task takes the price records after it and no other.

Prices are not journalled here (the worker's engines journal none): the global
price table (:mod:`.prices`) is read again from the topic.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

# the task's position in market.prices: {"<partition>": next offset}
PRICES_POSITION = "prices-position"

_decode = msgspec.json.Decoder(dict[str, Any]).decode


def changelog_topic(app_id: str) -> str:
    """The changelog topic of an application (Kafka Streams names it after the app id)."""
    return f"{app_id}-journal-changelog"


# compact JSON, the same bytes json.dumps gives with compact separators for ASCII text
# (UTF-8 for the rest), a tenth of its time: a commit writes every key changed since the last
_ENCODER = msgspec.json.Encoder()


def encode(document: dict[str, Any] | None) -> bytes | None:
    return None if document is None else _ENCODER.encode(document)


@dataclass
class Restored:
    """What a task's changelog partition held: the engine's entries and its price position."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices_position: dict[int, int] = field(default_factory=dict)
    records: int = 0  # records read, tombstones included


async def restore(
    client: dict[str, Any], topic: str, tasks: list[int], timeout: float = 600.0
) -> dict[int, Restored]:
    """Read the changelog partitions of ``tasks`` to their end, committed records only.

    The caller has started each task's transactional producer first: that fences
    the previous owner and aborts its open transaction, so the end read here is
    final.
    """
    restored = {task: Restored() for task in tasks}
    if not tasks:
        return restored
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        **client,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, task) for task in tasks]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        left = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"changelog {topic} not read to its end in {timeout:g} s")
            batch = await consumer.getmany(*left, timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                into = restored[tp.partition]
                into.records += len(records)
                for record in records:
                    _apply(into, record.key.decode(), record.value)
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return restored


def _apply(into: Restored, key: str, value: bytes | None) -> None:
    if key == PRICES_POSITION:
        if value is not None:
            into.prices_position = {int(p): at for p, at in _decode(value).items()}
        return
    if value is None:
        into.entries.pop(key, None)
    else:
        into.entries[key] = _decode(value)
