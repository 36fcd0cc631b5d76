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
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.progress import PROGRESS_SECONDS
from monitor.worker.backlog import BacklogRead

log = logging.getLogger(__name__)

# the task's position in market.prices: {"<partition>": next offset}
PRICES_POSITION = "prices-position"
# a restore that reads nothing this long gives up (the task is opened again later); one
# that reads goes on, however large the state
RESTORE_STALL_SECONDS = 120.0

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
    client: dict[str, Any],
    topic: str,
    tasks: list[int],
    stall: float = RESTORE_STALL_SECONDS,
    every: float = PROGRESS_SECONDS,
) -> dict[int, Restored]:
    """Read the changelog partitions of ``tasks`` to their end, committed records only.

    The caller has started each task's transactional producer first: that fences
    the previous owner and aborts its open transaction, so the end read here is
    final. However long the state makes the read, it goes on while it moves; it says
    how far it has come every ``every`` seconds, and raises
    :class:`~monitor.worker.backlog.Stalled` when nothing is read for ``stall`` seconds.
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
        start = {tp: await consumer.position(tp) for tp in partitions}
        backlog = BacklogRead(
            f"tasks {tasks}: restoring changelog {topic}",
            start,
            await consumer.end_offsets(partitions),
            stall=stall,
            every=every,
        )
        while not backlog.done:
            batch = await consumer.getmany(*backlog.behind(), timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                into = restored[tp.partition]
                into.records += len(records)
                for record in records:
                    _apply(into, record.key.decode(), record.value)
            backlog.at({tp: await consumer.position(tp) for tp in backlog.behind()})
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
