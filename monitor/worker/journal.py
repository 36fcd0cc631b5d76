"""The worker's journal: the engine's state in changelog topics, one flush at a time.

Every piece of state the engine journals is an entry: a key (``journal_key``,
e.g. ``["volume","dmm",478000]``) and a JSON document, or None to delete it.
The worker buffers the entries a batch of events and its settle produce, and
:meth:`Journal.write` sends them together, a *flush*:

- per exchange, one record first carries every entry of the flush (the
  exchange's ``["flush", exchange]`` entry, rewritten each time), then each
  entry goes under its own key. Kafka keeps the order within a partition, and
  all of an exchange's entries share one, so a crash in the middle leaves either
  none of the flush or its whole record, which :meth:`Journal.recovered` applies
  last;
- prices go to the global ``prices`` table, which every worker reads whole;
- ``["outbox", exchange, change id]`` entries hold the alerts not yet delivered.

Faust's tables hold what was written (``table.data``) and recover it from the
changelogs after a rebalance; this module only writes and reads them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import ProducerT
from faust.types.tables import GlobalTableT, TableT

from monitor.core.engine import StatusChange, journal_key

# the latest flush of an exchange's journal, whole, in one record: ["flush", exchange]
FLUSH = "flush"
# alerts not yet delivered: ["outbox", exchange, change id]
OUTBOX = "outbox"

Entry = tuple[str, dict[str, Any]]


def outbox_key(change: StatusChange) -> str:
    return journal_key(OUTBOX, change.exchange, change.id)


@lru_cache(maxsize=1 << 16)  # journal keys repeat: the same few per exchange
def kind_and_owner(key: str) -> tuple[str, str]:
    """A journal key's kind and the exchange (or, for a price, the asset) it belongs to."""
    kind, owner = json.loads(key)[:2]
    return kind, owner


@lru_cache(maxsize=1 << 16)
def key_text(key: str) -> str:
    """A journal key as the tables' json key serialiser writes it."""
    return json.dumps(key)


@lru_cache(maxsize=1 << 16)  # murmur2 in Python, for the same few owners again and again
def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client)."""
    return (int(murmur2(key.encode("utf-8"))) & 0x7FFFFFFF) % partitions


class Journal:
    """Writes flushes of journal entries to the two tables' changelogs, and reads them back."""

    def __init__(self, state: TableT[Any, Any], prices: GlobalTableT, partitions: int) -> None:
        self.state = state
        self.prices = prices
        self.partitions = partitions

    async def write(self, producer: ProducerT, pending: dict[str, dict[str, Any] | None]) -> None:
        """Send one flush, each exchange's whole record first, and wait until it is delivered."""
        n = self.partitions
        # each value serialised once, as the tables' json schema reads it back: the
        # exchange's whole flush record is assembled from the same text
        flushes: dict[str, tuple[dict[str, Any], list[str]]] = {}
        entries = []
        for key, value in pending.items():
            kind, owner = kind_and_owner(key)
            table = self.prices if kind == "price" else self.state
            text = "null" if value is None else json.dumps(value)
            if table is self.state:
                record, texts = flushes.setdefault(owner, ({}, []))
                record[key] = value
                texts.append(f"{key_text(key)}:{text}")
            entries.append((table, partition_of(owner, n), key, value, text))
        whole = [
            (
                self.state,
                partition_of(exchange, n),
                journal_key(FLUSH, exchange),
                {"entries": record},
                '{"entries":{' + ",".join(texts) + "}}",
            )
            for exchange, (record, texts) in flushes.items()
        ]
        # straight to the producer: Faust's Topic.send costs about half a millisecond
        for table, partition, key, value, text in whole + entries:  # each whole flush first
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
            await producer.send(
                table.changelog_topic.get_topic_name(),
                key_text(key).encode(),
                None if value is None else text.encode(),
                partition,
                None,
                None,
            )
        await producer.flush()

    def recovered_prices(self) -> list[Entry]:
        """Every price entry: the global table holds all of them on every worker."""
        return [(key, doc) for key, doc in list(self.prices.data.items()) if doc is not None]

    def recovered(self, owned: set[int]) -> tuple[list[Entry], list[Entry]]:
        """The entries of the exchanges on the ``owned`` partitions: (state, outbox).

        Each exchange's latest whole flush is applied over the entries under their
        own keys, since a crash may have cut off the entries that followed it.
        """
        entries: dict[str, dict[str, Any] | None] = {}
        flushes = []
        for key, document in list(self.state.data.items()):
            kind, owner = kind_and_owner(key)
            if document is None or partition_of(owner, self.partitions) not in owned:
                continue
            if kind == FLUSH:
                flushes.append(document["entries"])
            else:
                entries[key] = document
        for flush in flushes:  # the latest flush, whole, over what its own entries left
            entries.update(flush)
        state: list[Entry] = []
        outbox: list[Entry] = []
        for key, document in entries.items():
            if document is not None:
                (outbox if kind_and_owner(key)[0] == OUTBOX else state).append((key, document))
        return state, outbox
