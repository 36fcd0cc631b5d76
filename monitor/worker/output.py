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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from monitor.core.changes import Write
from monitor.worker.changelog import PRICES_POSITION, encode
from monitor.worker.deadletter import DEADLETTER_MAX_BYTES

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]] | None


def transactional_id(app_id: str, task: int) -> str:
    return f"{app_id}-task-{task}"


def task_producer(app_id: str, task: int, client: dict[str, Any]) -> AIOKafkaProducer:
    """The transactional producer of one task (not started)."""
    return AIOKafkaProducer(
        transactional_id=transactional_id(app_id, task),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
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
        # the task's position in market.prices, and whether it moved since the last commit
        self.prices_position: dict[int, int] = {}
        self.prices_moved = False
        self.alerts = False  # a status change is among the records
        self.in_transaction = False

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

    def consumed(self, tp: TopicPartition, offset: int) -> None:
        """Record ``offset`` of ``tp`` as processed: the committed offset becomes offset + 1."""
        self.offsets[tp] = offset + 1

    async def commit(self) -> None:
        """Send everything collected and the offsets in one transaction.

        Raises what the producer raises (``ProducerFenced`` when a newer owner of the
        task has started); the caller then drops or rebuilds the task.
        """
        if not self.pending:
            return
        producer = self.producer
        if not self.in_transaction:
            await producer.begin_transaction()
            self.in_transaction = True
        journal, records, offsets = self.journal, self.records, self.offsets
        self.journal, self.records, self.offsets = {}, [], {}
        self.alerts = False
        if self.prices_moved:
            position = {str(p): at for p, at in sorted(self.prices_position.items())}
            journal[PRICES_POSITION] = position
            self.prices_moved = False
        for key, document in journal.items():
            await producer.send(
                self.changelog, encode(document), key=key.encode(), partition=self.task
            )
        for topic, record_key, value, headers in records:
            await producer.send(topic, value, key=record_key, headers=headers)
        if offsets:
            await producer.send_offsets_to_transaction(offsets, self.group_id)
        self.in_transaction = False
        await producer.commit_transaction()

    async def close(self) -> None:
        """Stop the producer; an open transaction is left for the next owner to abort."""
        await self.producer.stop()
