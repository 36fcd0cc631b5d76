"""A task's input partitions merged in append order: Kafka Streams' ``PartitionGroup``.

A task owns one partition number of each input topic keyed by exchange, and
the engine must take their records in the order the broker appended them
(CONTRACT section 8): by record timestamp (``LogAppendTime`` on the monitor's
input topics), ties broken by the partitions' order and then by offset.
Records come from the consumer in fetches, partition by partition, so each
partition's fetched records wait in a buffer of their own, and the group hands
out the buffered record with the lowest timestamp.

A partition whose buffer is empty while the broker still has records for it
(it has lag) might hold an earlier record than any buffered, so the group waits
for its next fetch. As Kafka Streams has since KIP-695, it waits however long
it takes for committed records (or while the partition's lag is not known yet):
the consumer's fetches will bring them, and going on without them would take
records out of append order whenever a fetch is slow, as it is while a worker
catches up on a backlog. Only where no fetch is sure to bring anything soon does
it wait up to ``max_idle`` seconds of the caller's clock
(``RESERVE_MONITOR_MAX_IDLE_SECONDS``, the model is ``max.task.idle.ms``) and
then go on: records of a transaction still open, and a partition read up to
an append time (:meth:`PartitionGroup.lagging`). A partition that is empty and
caught up holds nothing to wait for.

Pure: it knows nothing of the consumer. The loop adds what each fetch brought
(:meth:`add`), says which partitions still have records on the broker
(:meth:`lagging`), and takes records with :meth:`next` until it returns None.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class AppendedRecord(Protocol):
    """What the group reads of a record: its append timestamp (ms) and its offset."""

    @property
    def timestamp(self) -> int: ...

    @property
    def offset(self) -> int: ...


# an input partition holding this many records in its task's group is not fetched until it
# holds half as many (Kafka Streams: buffered.records.per.partition): a task waiting for one
# partition, or slower than its fetches, holds a bounded part of a backlog, not all of it
BUFFERED_PER_PARTITION = 2_000

P = TypeVar("P", bound=Hashable)  # a partition, e.g. aiokafka's TopicPartition
R = TypeVar("R", bound=AppendedRecord)


@dataclass
class _Buffer(Generic[R]):
    rank: int  # the partition's place among the task's, for ties of timestamp
    records: deque[R] = field(default_factory=deque)
    lagging: bool = False  # the broker has records beyond what was fetched
    # those records are committed (or the lag is not known yet): waited for without bound
    fetchable: bool = False
    # append time (ms) before which the partition surely holds nothing unread; None: no
    # such bound known (the partition holds the group back only while it lags)
    read_to: int | None = None


class PartitionGroup(Generic[P, R]):
    """The buffered records of a task's partitions, handed out in append order."""

    def __init__(self, partitions: Iterable[P], max_idle: float) -> None:
        if max_idle < 0:
            raise ValueError("max_idle must not be negative")
        self.max_idle = max_idle
        self._buffers: dict[P, _Buffer[R]] = {
            partition: _Buffer(rank) for rank, partition in enumerate(partitions)
        }
        # (timestamp, rank, offset) of each non-empty buffer's head: the next record
        self._heads: list[tuple[int, int, int, P]] = []
        self._waiting_since: float | None = None
        # records handed out while a partition that may precede them was empty: waited for
        # up to max_idle (an open transaction's records, a partition read up to a time)
        self.enforced = 0
        # records handed out after one appended later (the guarantee broken: a partition
        # waited for past max_idle, or a broker's clock ahead of the worker's)
        self.out_of_order = 0
        self._newest = -1  # the latest append time handed out
        # what the empty partitions hold back, kept as buffers empty and fill: all records
        # (one lags), or those appended at or after ``_held_from`` (the earliest read_to)
        self._hold_all = False
        self._held_from: int | None = None
        self._hold_for_fetch = False  # an empty partition's committed records are awaited

    @property
    def buffered(self) -> int:
        return sum(len(buffer.records) for buffer in self._buffers.values())

    def buffered_in(self, partition: P) -> int:
        buffer = self._buffers.get(partition)
        return len(buffer.records) if buffer is not None else 0

    def add(self, partition: P, records: Iterable[R]) -> None:
        """Records fetched from ``partition``, in offset order, after those added before."""
        buffer = self._buffers[partition]
        was_empty = not buffer.records
        buffer.records.extend(records)
        if was_empty and buffer.records:
            self._push_head(partition, buffer)
            self._held()

    def clear(self, partition: P) -> None:
        """Drop what ``partition`` has buffered: the consumer reads it again, from its commit."""
        buffer = self._buffers[partition]
        buffer.records.clear()
        buffer.lagging = buffer.fetchable = False
        self._heads = [head for head in self._heads if head[3] != partition]
        heapq.heapify(self._heads)
        self._held()

    def read_up_to(self) -> int | None:
        """The append time (ms) up to which every partition is surely read, if known."""
        times = [b.read_to for b in self._buffers.values()]
        return None if not times or None in times else min(t for t in times if t is not None)

    @property
    def caught_up(self) -> bool:
        """Nothing buffered and nothing left on the broker: append time may pass by the clock."""
        return not self._heads and not any(b.lagging for b in self._buffers.values())

    def waited(self, now: float) -> float:
        """How long (s) the group has been waiting for an empty partition, by ``now``."""
        return 0.0 if self._waiting_since is None else now - self._waiting_since

    def awaited(self) -> list[P]:
        """The empty partitions whose committed records the group waits for, however long."""
        return [p for p, b in self._buffers.items() if not b.records and b.fetchable]

    def lagging(
        self,
        partition: P,
        has_more: bool,
        read_to: int | None = None,
        fetchable: bool = False,
    ) -> None:
        """Whether the broker holds records of ``partition`` beyond those fetched, and,
        when it does not, the append time (ms) up to which it has surely been read.

        ``fetchable``: the records beyond are committed, so the consumer's next fetches
        bring them (or the partition's lag is not known yet, before its first fetch
        answer). An empty partition so placed holds the group back until they come,
        however long that takes. An empty partition whose records are not fetchable
        yet (an open transaction's), or read up to ``read_to`` (which holds back the
        records appended at or after it: a record appended there meanwhile may come
        first), holds it back up to ``max_idle``.
        """
        buffer = self._buffers[partition]
        buffer.lagging, buffer.read_to = has_more, read_to
        buffer.fetchable = has_more and fetchable
        self._held()

    def next(self, now: float) -> tuple[P, R] | None:
        """The buffered record appended first, or None to wait for a fetch.

        ``now`` is the caller's clock in seconds: an empty partition whose committed
        records are still to be fetched is waited for until they come; one whose
        records are not fetchable yet, or that is read only up to before the record's
        append time, until ``max_idle`` has passed since the wait began.
        """
        if not self._heads:
            self._waiting_since = None
            return None
        head = self._heads[0][0]
        held_from = self._held_from
        if self._hold_for_fetch:
            if self._waiting_since is None:
                self._waiting_since = now
            return None
        if self._hold_all or (held_from is not None and head >= held_from):
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < self.max_idle:
                return None
            self.enforced += 1
        else:
            self._waiting_since = None
        timestamp, _, _, partition = heapq.heappop(self._heads)
        if timestamp < self._newest:
            self.out_of_order += 1
        else:
            self._newest = timestamp
        buffer = self._buffers[partition]
        record = buffer.records.popleft()
        if buffer.records:
            self._push_head(partition, buffer)
        else:
            self._held()
        return partition, record

    def _held(self) -> None:
        """Note what the empty partitions hold back: an empty partition with lag holds
        every record, one read up to ``read_to`` the records appended at or after it."""
        hold_all = hold_for_fetch = False
        held_from = None
        for buffer in self._buffers.values():
            if buffer.records:
                continue
            if buffer.lagging:
                hold_all = True
                hold_for_fetch = hold_for_fetch or buffer.fetchable
            elif buffer.read_to is not None and (held_from is None or buffer.read_to < held_from):
                held_from = buffer.read_to
        self._hold_all, self._held_from = hold_all, held_from
        self._hold_for_fetch = hold_for_fetch

    def _push_head(self, partition: P, buffer: _Buffer[R]) -> None:
        head = buffer.records[0]
        heapq.heappush(self._heads, (head.timestamp, buffer.rank, head.offset, partition))
