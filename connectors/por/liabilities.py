"""Totals per asset, and the ``customer_liability`` ledger events that state them.

Every parser ends in :class:`Totals`: what the exchange owes its customers in
each asset, summed exactly in ``Decimal``. :func:`ledger_events` makes one event
per asset (CONTRACT section 3), dated by the file's snapshot time, each checked
by the monitor's own event validation before anything is published.

An event's id comes from (exchange, as-of, asset, SHA-256 of the file): importing
the same file again yields the same ids, which the monitor counts as duplicates,
and a different file for the same moment yields new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from connectors.por.problems import InvalidPorFile, Problem
from connectors.sinks import Outgoing
from monitor.core.errors import InvalidEvent
from monitor.core.events import Topic, validate
from monitor.core.money import rfc3339

LEDGER_TOPIC = Topic.LEDGER.value


@dataclass
class Totals:
    """Amounts owed per asset, in the order the file first names each asset."""

    amounts: dict[str, Decimal] = field(default_factory=dict)

    def add(self, asset: str, amount: Decimal) -> None:
        self.amounts[asset] = self.amounts.get(asset, Decimal(0)) + amount

    def name(self, asset: str) -> None:
        """Count ``asset`` as owed even if nothing is (a column of zeros is still news)."""
        self.amounts.setdefault(asset, Decimal(0))

    def __iter__(self) -> Iterator[tuple[str, Decimal]]:
        return iter(self.amounts.items())

    def __len__(self) -> int:
        return len(self.amounts)


def file_digest(data: bytes) -> str:
    """SHA-256 of the file's bytes, in hex: the file's identity in event ids."""
    return hashlib.sha256(data).hexdigest()


def event_id(exchange: str, as_of: datetime, asset: str, digest: str) -> str:
    """Deterministic: the same (exchange, as-of, asset, file) gives the same id."""
    material = "\n".join((exchange, rfc3339(as_of), asset, digest)).encode()
    return "por-" + hashlib.sha256(material).hexdigest()[:40]


def amount_text(amount: Decimal) -> str:
    """Plain decimal notation, no exponent, no trailing fractional zeros."""
    if amount == amount.to_integral_value():
        return f"{amount.quantize(Decimal(1)):f}"
    return f"{amount.normalize():f}"


def ledger_events(totals: Totals, *, exchange: str, as_of: datetime, digest: str) -> list[Outgoing]:
    """One ``customer_liability`` event per asset, keyed by exchange.

    Raises :class:`InvalidPorFile` naming each asset whose event the monitor
    would refuse (an amount out of its range, say), so none is published.
    """
    events: list[Outgoing] = []
    problems: list[Problem] = []
    for asset, amount in totals:
        value: Mapping[str, str] = {
            "type": "customer_liability",
            "event_id": event_id(exchange, as_of, asset, digest),
            "exchange": exchange,
            "ts": rfc3339(as_of),
            "asset": asset,
            "amount": amount_text(amount),
        }
        try:
            validate(Topic.LEDGER, dict(value))
        except InvalidEvent as error:
            problems.append(Problem(0, f"the {asset} liability cannot be sent: {error}"))
            continue
        events.append(Outgoing(LEDGER_TOPIC, exchange, value))
    if problems:
        raise InvalidPorFile(problems)
    return events
