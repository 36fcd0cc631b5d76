"""An in-memory `EventSink` for the connector tests: what a source published, as it was sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.sinks import Outgoing


class MemorySink:
    """Keeps every batch a source sends, in order (a stand-in for our own sink, not Kafka's)."""

    def __init__(self) -> None:
        self.batches: list[list[Outgoing]] = []

    async def send(self, events: Sequence[Outgoing]) -> None:
        self.batches.append(list(events))

    async def close(self) -> None:
        pass

    @property
    def events(self) -> list[Outgoing]:
        """Every event sent, in order, across the batches."""
        return [event for batch in self.batches for event in batch]

    def of(self, wallet: str) -> list[dict[str, Any]]:
        """The values of the events of one wallet, in order."""
        return [dict(e.value) for e in self.events if e.value["wallet"] == wallet]
