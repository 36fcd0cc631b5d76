"""Where a connector's events go: a Kafka topic, or JSON Lines that `replay` reads.

Every source in `connectors/` hands its events to an `EventSink` and knows
nothing of the transport. `KafkaSink` produces with `acks=all` and idempotence,
keyed as the contract says (exchange id, or asset for prices), and connects as
the worker does (`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_SECURITY_PROTOCOL`…, topics
under `RESERVE_MONITOR_TOPIC_PREFIX`). `JsonLinesSink` writes the replay format,
one `{"topic", "key", "value"}` a line, flushed after each batch so a follower
of the file sees whole batches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    # aiokafka ships no type information (no py.typed, no stubs).
    from aiokafka import AIOKafkaProducer


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event for a contract topic: the topic's bare name, its key, its JSON value."""

    topic: str
    key: str
    value: Mapping[str, Any]


class EventSink(Protocol):
    async def send(self, events: Sequence[Outgoing]) -> None:
        """Deliver ``events`` in order; return once they are durable (or raise)."""

    async def close(self) -> None: ...


class JsonLinesSink:
    """Writes the replay format to an open text file (stdout for ``-``)."""

    def __init__(self, file: TextIO, *, owned: bool = False) -> None:
        self._file = file
        self._owned = owned  # opened here, so closed here

    async def send(self, events: Sequence[Outgoing]) -> None:
        for event in events:
            line = {"topic": event.topic, "key": event.key, "value": dict(event.value)}
            self._file.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._file.flush()

    async def close(self) -> None:
        if self._owned:
            self._file.close()
        else:
            self._file.flush()


class KafkaSink:
    """Produces to the contract's topics; `send` returns when the brokers have them all."""

    def __init__(self, producer: AIOKafkaProducer, topic_prefix: str) -> None:
        self._producer = producer
        self._prefix = topic_prefix

    @classmethod
    async def start(cls, client_id: str) -> KafkaSink:
        """A started sink, configured from the environment as the worker is."""
        from aiokafka import AIOKafkaProducer

        from monitor.settings import KafkaClientSettings
        from monitor.worker.connection import aiokafka_security

        settings = KafkaClientSettings()
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            **aiokafka_security(settings),
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()  # its connections and tasks, whatever start left open
            raise
        return cls(producer, os.environ.get("RESERVE_MONITOR_TOPIC_PREFIX", ""))

    async def send(self, events: Sequence[Outgoing]) -> None:
        deliveries = [
            await self._producer.send(
                self._prefix + event.topic,
                key=event.key.encode(),
                value=json.dumps(event.value, separators=(",", ":"), ensure_ascii=False).encode(),
            )
            for event in events
        ]
        for delivery in deliveries:
            await delivery

    async def close(self) -> None:
        await self._producer.stop()


async def open_sink(jsonl: str | None, client_id: str) -> EventSink:
    """``--jsonl FILE|-`` gives JSON Lines (appended to FILE), else Kafka."""
    import sys

    if jsonl == "-":
        return JsonLinesSink(sys.stdout)
    if jsonl is not None:
        return JsonLinesSink(open(jsonl, "a", encoding="utf-8"), owned=True)
    return await KafkaSink.start(client_id)
