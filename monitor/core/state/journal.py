"""The journal: each piece of state the engine keeps, as an entry it writes and reads back.

A driver with durable storage (the worker's changelog) stores every entry the
engine returns and, after a restart, hands them back to :meth:`Engine.restore`;
the latest entry of each key is the state. This module is the one place that
says what an entry holds: the writers below make ``(key, document)`` pairs
(``None`` deletes the key), and :func:`read` turns a pair back into an
:class:`Entry` with typed accessors.

Keys are JSON lists, the kind first: ``["price", asset]`` for prices (every
worker keeps them all), and for everything else the exchange second, so a
driver can place each entry on the partition of its exchange.

=========== ======================================= =========================================
kind        key after the exchange                  document
=========== ======================================= =========================================
``wallet``  wallet, asset                           the wallet-balance event
``ledger``  the figure's slot (type, asset/policy)  the ledger event
``volume``  bucket number                           ``amount``
``feed``    feed name                               ``ts`` of its newest record
``clock``                                           ``ts``, whether its moment is ``open``, and
                                                    the append time of its latest record, and
                                                    the records applied late to the open moment
``awaiting`` currency                               the trades waiting for its first price
``seen``    block number                            ``ids`` with their numbers
``rule``    rule id                                 ``status``, ``changes``, ``pending``
``peak``    level number                            a level of the hot-value peak window
``hotfalls``                                        the largest hot-wallet falls
=========== ======================================= =========================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from monitor.core.changes import Write, journal_key, new_journal_key
from monitor.core.events import (
    LedgerEvent,
    Price,
    Topic,
    Trade,
    WalletBalance,
    from_document,
    to_document,
)
from monitor.core.money import decimal_text, rfc3339
from monitor.core.state import HotFall, RuleState
from monitor.core.state.peaks import Level
from monitor.core.status import Status


class Kind(StrEnum):
    PRICE = "price"
    WALLET = "wallet"
    LEDGER = "ledger"
    VOLUME = "volume"
    FEED = "feed"
    CLOCK = "clock"
    AWAITING = "awaiting"
    SEEN = "seen"
    RULE = "rule"
    PEAK = "peak"
    HOTFALLS = "hotfalls"


# -- writing ----------------------------------------------------------------------------


def price(entry: Price) -> Write:
    return journal_key(Kind.PRICE, entry.asset), to_document(entry)


def wallet(exchange: str, snapshot: WalletBalance) -> Write:
    return journal_key(Kind.WALLET, exchange, snapshot.wallet, snapshot.asset), to_document(
        snapshot
    )


def ledger(exchange: str, slot: tuple[str, ...], entry: LedgerEvent) -> Write:
    return journal_key(Kind.LEDGER, exchange, *slot), to_document(entry)


def volume(exchange: str, bucket: int, amount: Decimal) -> Write:
    """A bucket's sum. (Changelogs written before the journal was committed whole, in one
    transaction with the input offsets, carry the id of the bucket's last trade too;
    :meth:`~monitor.core.state.exchange.Exchange.rebuild` still reads it.)"""
    return new_journal_key(Kind.VOLUME, exchange, bucket), {"amount": decimal_text(amount)}


def gone(exchange: str, key: tuple[str | int, ...]) -> Write:
    """The deletion of an exchange's entry: ``key`` is its kind and its parts after the
    exchange, as :class:`~monitor.core.state.exchange.Exchange` notes what changed."""
    return journal_key(key[0], exchange, *key[1:]), None


def feed(exchange: str, name: str, moment: datetime) -> Write:
    return journal_key(Kind.FEED, exchange, name), {"ts": rfc3339(moment)}


def clock(
    exchange: str,
    moment: str,
    is_open: bool,
    appended: float | None,
    late: list[dict[str, str]],
) -> Write:
    """``moment`` is the clock in RFC 3339 (:func:`~monitor.core.money.rfc3339`)."""
    document: dict[str, Any] = {"ts": moment, "open": is_open}
    if appended is not None:
        document["appended"] = appended
    if late:
        document["late"] = list(late)
    return journal_key(Kind.CLOCK, exchange), document


def awaiting(exchange: str, currency: str, documents: list[dict[str, Any]]) -> Write:
    return journal_key(Kind.AWAITING, exchange, currency), {"trades": documents}


def seen(exchange: str, block: int, ids: dict[str, int]) -> Write:
    return journal_key(Kind.SEEN, exchange, block), {"ids": ids}


def rule(exchange: str, rule_id: str, held: RuleState) -> Write:
    document: dict[str, Any] = {"status": held.status.value, "changes": held.changes}
    if held.pending is not None:
        document["pending"] = rfc3339(held.pending)
    return journal_key(Kind.RULE, exchange, rule_id), document


def peak(exchange: str, level: Level) -> Write:
    return new_journal_key(Kind.PEAK, exchange, level.seq), level.to_document()


def hotfalls(exchange: str, falls: list[HotFall]) -> Write:
    return journal_key(Kind.HOTFALLS, exchange), {"falls": [f.to_document() for f in falls]}


# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One journalled piece of state, read back: its kind, exchange and the rest of its key."""

    kind: Kind
    exchange: str | None
    parts: tuple[Any, ...]
    document: dict[str, Any]

    def price(self) -> Price:
        event = from_document(Topic.PRICES, self.document)
        assert isinstance(event, Price)
        return event

    def wallet(self) -> WalletBalance:
        event = from_document(Topic.WALLET_BALANCES, self.document)
        assert isinstance(event, WalletBalance)
        return event

    def ledger(self) -> LedgerEvent:
        event = from_document(Topic.LEDGER, self.document)
        assert not isinstance(event, Trade | WalletBalance | Price)
        return event

    def trades(self) -> list[tuple[Trade, dict[str, Any]]]:
        held = []
        for document in self.document["trades"]:
            trade = from_document(Topic.TRADES, document)
            assert isinstance(trade, Trade)
            held.append((trade, document))
        return held

    def moment(self) -> datetime:
        return datetime.fromisoformat(self.document["ts"])

    def rule_state(self) -> RuleState:
        pending = self.document.get("pending")
        return RuleState(
            Status(self.document["status"]),
            self.document["changes"],
            pending=None if pending is None else datetime.fromisoformat(pending),
        )

    def level(self) -> Level:
        return Level.from_document(int(self.parts[0]), self.document)

    def falls(self) -> list[HotFall]:
        return [HotFall.from_document(fall) for fall in self.document["falls"]]


def read(key: str, document: dict[str, Any]) -> Entry:
    """The entry a journalled key and document describe; ValueError for an unknown kind."""
    kind, *parts = json.loads(key)
    try:
        known = Kind(kind)
    except ValueError:
        raise ValueError(f"unknown journal key {key!r}") from None
    if known is Kind.PRICE:
        return Entry(known, None, tuple(parts), document)
    return Entry(known, parts[0], tuple(parts[1:]), document)
