"""``market.prices`` as a global table: every worker reads all of it, outside the group.

Prices are shared by every exchange, so every task needs every price record, in
append order among its own records (CONTRACT section 8). The worker reads the
topic with a consumer of its own, in no group, from the start of the price
history the core keeps (``offsets_for_times`` at now less
``RESERVE_MONITOR_PRICE_HISTORY_SECONDS``), and keeps what it read in a
:class:`PriceLog`. Each task takes the log's records from its own position,
merged with its input partitions by append time; a restored task first takes
the records before its position as history, without judging, so its price
table is the one it had.

The topic needs delete retention at least as long as that history (the monitor
creates it so), not compaction: compaction would keep one price per asset,
and the history an exchange behind the feed is valued by would be gone.
"""

from __future__ import annotations

import bisect
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.core.events import Event, Topic
from monitor.worker.backlog import BacklogRead, Stalled
from monitor.worker.intake import decoded

log = logging.getLogger(__name__)


class PriceRecord:
    """One record of ``market.prices`` as read, decoded once for every task."""

    __slots__ = ("_event", "key", "offset", "partition", "timestamp", "value")

    def __init__(
        self, partition: int, offset: int, timestamp: int, key: bytes | None, value: bytes | None
    ) -> None:
        self.partition, self.offset, self.timestamp = partition, offset, timestamp
        self.key, self.value = key, value
        self._event: Event | str | None = None

    @property
    def event(self) -> Event | str:
        """The price, or the error that makes the record a dead letter."""
        if self._event is None:
            self._event = decoded(Topic.PRICES, self.key, self.value)
        return self._event


class PriceLog:
    """The price records read so far, per partition in offset order, from the history start."""

    def __init__(self, partitions: list[TopicPartition]) -> None:
        self.partitions = partitions
        self._records: dict[TopicPartition, list[PriceRecord]] = {tp: [] for tp in partitions}
        self._offsets: dict[TopicPartition, list[int]] = {tp: [] for tp in partitions}
        # the offset the log starts at, per partition: what was trimmed is before it
        self.start: dict[TopicPartition, int] = {tp: 0 for tp in partitions}

    def extend(self, tp: TopicPartition, records: list[PriceRecord]) -> None:
        self._records[tp].extend(records)
        self._offsets[tp].extend(r.offset for r in records)

    def since(self, tp: TopicPartition, offset: int) -> list[PriceRecord]:
        """The records of ``tp`` at or after ``offset``."""
        return self._records[tp][bisect.bisect_left(self._offsets[tp], offset) :]

    def before(self, tp: TopicPartition, offset: int) -> list[PriceRecord]:
        """The records of ``tp`` before ``offset``: a restored task's history."""
        return self._records[tp][: bisect.bisect_left(self._offsets[tp], offset)]

    def trim(self, keep: dict[TopicPartition, int], horizon_ms: int) -> int:
        """Drop records appended before ``horizon_ms`` and before ``keep`` (each task's
        position); the number dropped."""
        dropped = 0
        for tp, records in self._records.items():
            limit = keep.get(tp)
            cut = 0
            while cut < len(records) and records[cut].timestamp < horizon_ms:
                if limit is not None and records[cut].offset >= limit:
                    break
                cut += 1
            if cut:
                self.start[tp] = records[cut - 1].offset + 1
                del records[:cut]
                del self._offsets[tp][:cut]
                dropped += cut
        return dropped


class PriceReader:
    """A consumer in no group that reads every partition of ``market.prices`` into a log."""

    def __init__(
        self, topic: str, partitions: int, history_seconds: float, client: dict[str, Any]
    ) -> None:
        self.topic = topic
        self.partitions = partitions
        self.history_seconds = history_seconds
        self.consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
            **client,
        )
        self.log = PriceLog([])

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, n) for n in range(self.partitions)]
        self.log = PriceLog(partitions)
        self.consumer.assign(partitions)
        since = int((time.time() - self.history_seconds) * 1000)
        found = await self.consumer.offsets_for_times(dict.fromkeys(partitions, since))
        for tp in partitions:
            at = found.get(tp)
            if at is None:  # nothing appended since the history start: read what comes
                await self.consumer.seek_to_end(tp)
                self.log.start[tp] = await self.consumer.position(tp)
            else:
                self.consumer.seek(tp, at.offset)
                self.log.start[tp] = at.offset
        log.info(
            "prices: reading %s from %s (the last %g s)",
            self.topic,
            {tp.partition: self.log.start[tp] for tp in partitions},
            self.history_seconds,
        )

    async def stop(self) -> None:
        await self.consumer.stop()

    async def fetch(self, timeout_ms: int = 0) -> dict[TopicPartition, list[PriceRecord]]:
        """What the consumer has fetched since the last call, added to the log."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms)
        fetched = {}
        for tp, records in batch.items():
            read = [
                PriceRecord(tp.partition, r.offset, r.timestamp, r.key, r.value) for r in records
            ]
            self.log.extend(tp, read)
            fetched[tp] = read
        return fetched

    async def read_to(
        self, positions: dict[TopicPartition, int], stall: float
    ) -> dict[TopicPartition, list[PriceRecord]]:
        """Read until every partition's position is at least ``positions`` (a restored
        task's), saying how far it has come every 10 s, or until nothing is read for
        ``stall`` seconds; the records read, as :meth:`fetch` gives them."""
        fetched: dict[TopicPartition, list[PriceRecord]] = {}
        backlog = BacklogRead(
            f"prices: reading {self.topic} up to the restored tasks' positions",
            {tp: await self.consumer.position(tp) for tp in positions},
            positions,
            stall=stall,
        )
        try:
            while not backlog.done:
                for tp, records in (await self.fetch(timeout_ms=100)).items():
                    fetched.setdefault(tp, []).extend(records)
                backlog.at({tp: await self.consumer.position(tp) for tp in backlog.behind()})
        except Stalled as stalled:
            log.warning("%s", stalled)
        return fetched
