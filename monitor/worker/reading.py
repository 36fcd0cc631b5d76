"""How far each partition is surely read, in append time, from the broker's own answers.

A task may take a record only once every partition it merges is surely read up to
the record's append time (CONTRACT section 8). A :class:`ReadProbe` asks the broker
for the end offsets of the partitions (ListOffsets), noting the wall time just before
the request goes out, through a consumer of its own that reads ``read_uncommitted``
(:func:`probe_consumer`): its end offset is the high watermark, under which lies
every record appended before then, committed or not. So a partition whose position
has reached that offset holds no unread record appended before that time.

The worker's own consumers read ``read_committed``, and their end offset is the last
stable offset: records a producer appended in a transaction still open lie beyond it,
unseen, and come into view only at its commit, each with the append time it was
given when it was written, earlier than that. Had the probe asked for the last stable
offset, a partition with an open transaction would have looked read up to the time
of the answer, and a record appended after the transaction's records, in another
partition, would have been taken before them (the bench's backlog, produced in one
transaction, was taken 200 records out of order a task in every drain). Now such a
partition still has records to read, and the task waits for them up to
``RESERVE_MONITOR_MAX_IDLE_SECONDS`` (records no fetch brings before the commit;
committed records are waited for until fetched: :mod:`monitor.worker.alignment`).

This is a fact of the broker's, not an estimate. A stamp taken when the answer to a
fetch is handled cannot say when the broker wrote it: a worker starved of CPU
handles the answer late, and a stamp less a margin can then pass a record that is
still unread. Only clock skew between the brokers and the worker, and records not
yet replicated, are left to the margin :data:`SKEW_MS`.

One request is in flight at a time: :meth:`ReadProbe.ask`, called when a partition
is found caught up, starts the next when the last has answered, so such a turn reads
an answer at most one round trip and a turn old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

# what append times (the brokers' clock) may run ahead of the worker's clock, and how
# long a record appended may take to reach the last stable offset (replication)
SKEW_MS = 20


def probe_consumer(client: dict[str, Any]) -> AIOKafkaConsumer:
    """The consumer a :class:`ReadProbe` asks through: in no group, assigned nothing,
    ``read_uncommitted`` (end offsets are high watermarks). Not started."""
    return AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
        **client,
    )


async def start_probe(consumer: AIOKafkaConsumer) -> None:
    """Start a :func:`probe_consumer` and let its coordinator's task begin: aiokafka's
    ``stop()`` fails with CancelledError on a consumer in no group whose task was
    cancelled before its first step (a stop at once)."""
    await consumer.start()
    await asyncio.sleep(0)


class ReadProbe:
    """The latest end offsets (high watermarks) of some partitions, and when they were
    asked for; ``consumer`` is a :func:`probe_consumer`."""

    def __init__(
        self,
        consumer: Any,
        partitions: Callable[[], list[TopicPartition]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer = consumer
        self.partitions = partitions
        self.clock = clock  # wall time, seconds: what append times are compared with
        self._asked: float | None = None  # wall time (s) the answer below was asked at
        self._ends: dict[TopicPartition, int] = {}
        self._in_flight: asyncio.Task[None] | None = None

    def ask(self) -> None:
        """Ask the broker again, unless a request is still in flight."""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.ensure_future(self._ask())

    async def _ask(self) -> None:
        partitions = self.partitions()
        if not partitions:
            return
        asked = self.clock()
        try:
            ends = await self.consumer.end_offsets(partitions)
        except (KafkaError, OSError) as error:  # the next turn asks again
            log.debug("end offsets not read: %s", error)
            return
        self._asked, self._ends = asked, ends

    def read_to(self, tp: TopicPartition, position: int) -> int | None:
        """The append time (ms) before which ``tp`` holds no unread record, once read to
        ``position``; None when the last answer shows records beyond it, or none came."""
        end = self._ends.get(tp)
        if self._asked is None or end is None or position < end:
            return None
        return int(self._asked * 1000) - SKEW_MS

    async def answered(self) -> None:
        """Wait for the request in flight, if any, to be answered (or to fail)."""
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)

    async def close(self) -> None:
        if self._in_flight is not None:
            self._in_flight.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._in_flight


class CommittedSince:
    """Whether the broker now holds committed records of a partition beyond a consumer's
    position: a transaction that the consumer's last fetch answer showed open has
    committed since, and its records are the next fetch's.

    A consumer learns the last stable offset from its fetch answers only, and a worker
    starved of CPU handles them late: when an upstream transaction commits (as a
    backlog produced in one does, all at once), a partition whose answer still says
    "open" would be waited for only up to ``RESERVE_MONITOR_MAX_IDLE_SECONDS``, then
    gone on without, out of append order. The loop asks through this, for a partition
    waited for that long, the broker's own last stable offset (``end_offsets`` of a
    ``read_committed`` consumer); one instance a turn, so each partition is asked at
    most once a turn. A failed request answers False: the wait stays bounded.
    """

    def __init__(self) -> None:
        self._answers: dict[tuple[Any, TopicPartition], bool] = {}

    async def since(self, consumer: Any, tp: TopicPartition) -> bool:
        if (consumer, tp) not in self._answers:
            try:
                stable = (await consumer.end_offsets([tp])).get(tp)
                answer = stable is not None and stable > await consumer.position(tp)
            except (KafkaError, OSError) as error:  # as if still open: waited up to max_idle
                log.debug("last stable offset of %s not read: %s", tp, error)
                answer = False
            self._answers[consumer, tp] = answer
        return self._answers[consumer, tp]
