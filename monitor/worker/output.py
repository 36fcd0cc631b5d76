"""A task's record collector: what it produced since its last commit, sent in one transaction.

Kafka Streams' first exactly-once design: one transactional producer per task,
its ``transactional.id`` made of the application id and the task. Starting it
fences the previous owner of the task (its next send or commit fails with
``ProducerFenced``) and aborts whatever transaction it left open.

One commit is one transaction carrying everything the task produced since the
last: alerts and breaches, adequacy reports, dead letters, each changelog key
changed (once, its newest value) and the input offsets consumed, sent with
``send_offsets_to_transaction``. A ``read_committed`` reader sees all of it or
none, and a restarted task resumes from offsets that match its changelog.

A transaction is sent in the background (:meth:`Collector.start_commit`) while the
task takes more records into the next one; the next begins only once the
worker has waited for it to end (:meth:`Collector.end_commit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, TopicPartition

from monitor.core.changes import Write
from monitor.worker.changelog import PRICES_POSITION, encode
from monitor.worker.deadletter import DEADLETTER_MAX_BYTES

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]] | None


class Counting(Protocol):
    """A counter (a prometheus_client child) the collector increments at the commit."""

    def inc(self, amount: float = 1) -> None: ...


def transactional_id(app_id: str, task: int) -> str:
    return f"{app_id}-task-{task}"


def task_producer(app_id: str, task: int, client: dict[str, Any]) -> AIOKafkaProducer:
    """The transactional producer of one task (not started)."""
    return AIOKafkaProducer(
        transactional_id=transactional_id(app_id, task),
        enable_idempotence=True,
        acks="all",
        # a transaction's records are all handed over at once, then committed: no lingering
        linger_ms=0,
        # KAFKA-5477: the broker answers a send that comes right after a commit, before
        # the commit's markers are written, with a retriable error; retry it soon
        retry_backoff_ms=20,
        # a dead letter carries a rejected message's bytes in base64: up to 4/3 its size
        max_request_size=DEADLETTER_MAX_BYTES,
        max_batch_size=256 * 1024,
        **client,
    )


class Collector:
    """The outputs and consumed offsets of one task since its last commit."""

    def __init__(
        self, producer: AIOKafkaProducer, group_id: str, changelog: str, task: int
    ) -> None:
        self.producer = producer
        self.group_id = group_id
        self.changelog = changelog
        self.task = task
        self.journal: dict[str, dict[str, Any] | None] = {}
        self.records: list[tuple[str, bytes | None, bytes, Headers]] = []
        self.offsets: dict[TopicPartition, int] = {}
        # counter increments that count what this transaction carries, made once it commits
        self.counts: dict[Counting, int] = {}
        # the task's position in market.prices, and whether it moved since the last commit
        self.prices_position: dict[int, int] = {}
        self.prices_moved = False
        self.alerts = False  # a status change is among the records
        self.in_transaction = False
        self._in_flight: asyncio.Future[None] | None = None
        self._started = 0.0

    async def start(self) -> None:
        """Start the producer and wait for its id: the previous owner is fenced from here on."""
        await self.producer.start()
        await self.producer.begin_transaction()  # waits for InitProducerId
        self.in_transaction = True

    @property
    def pending(self) -> bool:
        return bool(self.journal or self.records or self.offsets or self.prices_moved)

    def write(self, writes: Iterable[Write]) -> None:
        """The engine's journal writes (the worker's engine journals no price)."""
        self.journal.update(writes)

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers = None) -> None:
        self.records.append((topic, key, value, headers))

    def alert(self, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
        """A status change: the worker commits it without waiting for the interval."""
        self.send(topic, key, value, headers)
        self.alerts = True

    def price_taken(self, partition: int, offset: int) -> None:
        self.prices_position[partition] = offset + 1
        self.prices_moved = True

    def count(self, counter: Counting, n: int = 1) -> None:
        """Add ``n`` to ``counter`` once what was collected so far has committed."""
        self.counts[counter] = self.counts.get(counter, 0) + n

    def consumed(self, tp: TopicPartition, offset: int) -> None:
        """Record ``offset`` of ``tp`` as processed: the committed offset becomes offset + 1."""
        self.offsets[tp] = offset + 1

    @property
    def committing(self) -> bool:
        """A transaction started by :meth:`start_commit` has not been waited for yet."""
        return self._in_flight is not None

    @property
    def commit_ended(self) -> bool:
        """The transaction in flight has ended, committed or failed: :meth:`end_commit` says."""
        return self._in_flight is not None and self._in_flight.done()

    @property
    def commit_age(self) -> float:
        """Seconds since the transaction in flight started (0 with none)."""
        return time.monotonic() - self._started if self._in_flight is not None else 0.0

    def start_commit(self) -> None:
        """Take everything collected so far and send it in one transaction in the background.

        What is collected from here on goes in the next transaction, which cannot begin
        before :meth:`end_commit` has waited for this one. Nothing to send: nothing starts.
        """
        if self._in_flight is not None:
            raise RuntimeError(f"task {self.task}: a transaction is still in flight")
        if not self.pending:
            return
        journal, records, offsets, counts = self.journal, self.records, self.offsets, self.counts
        self.journal, self.records, self.offsets, self.counts = {}, [], {}, {}
        self.alerts = False
        if self.prices_moved:
            position = {str(p): at for p, at in sorted(self.prices_position.items())}
            journal[PRICES_POSITION] = position
            self.prices_moved = False
        self._started = time.monotonic()
        self._in_flight = asyncio.ensure_future(
            self._transaction(journal, records, offsets, counts)
        )

    async def end_commit(self) -> None:
        """Wait for the transaction in flight, if any, to end.

        Raises what the producer raised (``ProducerFenced`` when a newer owner of the
        task has started); the caller then drops or rebuilds the task.
        """
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await in_flight

    async def _transaction(
        self,
        journal: dict[str, dict[str, Any] | None],
        records: list[tuple[str, bytes | None, bytes, Headers]],
        offsets: dict[TopicPartition, int],
        counts: dict[Counting, int],
    ) -> None:
        producer = self.producer
        if not self.in_transaction:
            await producer.begin_transaction()
            self.in_transaction = True
        # The changelog's records go to one partition: built into batches here, a
        # record costs a fifth of a send of its own (0.85 µs against 4.6, measured).
        batch = producer.create_batch()
        for key, document in journal.items():
            record = {"timestamp": None, "key": key.encode(), "value": encode(document)}
            if batch.append(**record) is None:  # full: the next batch takes it
                _delivered(await producer.send_batch(batch, self.changelog, partition=self.task))
                batch = producer.create_batch()
                batch.append(**record)  # the first record of a batch always fits
        if journal:
            _delivered(await producer.send_batch(batch, self.changelog, partition=self.task))
        for topic, record_key, value, headers in records:
            _delivered(await producer.send(topic, value, key=record_key, headers=headers))
        if offsets:
            await producer.send_offsets_to_transaction(offsets, self.group_id)
        self.in_transaction = False
        await producer.commit_transaction()
        for counter, n in counts.items():
            counter.inc(n)

    async def close(self) -> None:
        """Stop the producer; an open transaction is left for the next owner to abort."""
        with contextlib.suppress(Exception):  # whatever became of it, it is over here
            await self.end_commit()
        await self.producer.stop()


def _delivered(delivery: asyncio.Future[Any]) -> None:
    """Let a record's (or a batch's) delivery end unwatched: the transaction's commit fails
    when a delivery does, and says why (:meth:`Collector.end_commit`).

    Its failure is retrieved when it comes, so asyncio does not log it again, with the
    producer's traceback, as a "Future exception was never retrieved" error: the producer
    fails every pending delivery when the broker goes away or the task is fenced.
    """
    delivery.add_done_callback(_retrieve)


def _retrieve(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled():
        delivery.exception()
