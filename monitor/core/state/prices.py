"""Prices as a table versioned by event time (CONTRACT section 8).

Every exchange is valued at the newest price dated at or before the moment it
is judged at, among the prices taken so far, so its verdicts do not depend on
how far the price feed has run ahead of its own records. The model is Kafka
Streams' versioned key-value store (KIP-889): each asset keeps its prices of
the last :data:`DEFAULT_PRICE_HISTORY` of event time, measured back from its
newest price, and always at least that newest one.

A price dated at or before the newest one held for its asset is ``stale``: the
history only grows forward, so a look-up is a bisection over a sorted list.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta
from typing import Final

from monitor.core.events import Price

# How far back each asset's price history reaches from its newest price. An exchange
# judged at a moment further back than that (its records run more than this behind the
# price feed, as in a long backlog of one exchange) is valued at the oldest price kept
# if it is not later than the moment, else its rules that need the price are unknown.
# Six hours covers a chain watcher's confirmations on every chain and an outage of a
# few hours; the rules refuse prices older than an hour by default anyway.
DEFAULT_PRICE_HISTORY: Final = timedelta(hours=6)


class PriceHistory:
    """The prices of one asset, oldest first, within the history window."""

    __slots__ = ("_first", "prices", "times")

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.prices: list[Price] = []
        self._first = 0  # entries before it have left the history (trimmed in chunks)

    @property
    def newest(self) -> Price:
        return self.prices[-1]

    @property
    def oldest(self) -> Price:
        return self.prices[self._first]

    def append(self, price: Price, history: timedelta) -> None:
        self.times.append(price.ts)
        self.prices.append(price)
        horizon = price.ts - history
        times, first = self.times, self._first
        last = len(times) - 1
        while first < last and times[first] < horizon:
            first += 1
        if first > 64 and first * 2 > len(times):
            del times[:first], self.prices[:first]
            first = 0
        self._first = first

    def at(self, moment: datetime) -> Price | None:
        """The newest price dated at or before ``moment``; None when none is kept."""
        index = bisect_right(self.times, moment, self._first) - 1
        return self.prices[index] if index >= self._first else None

    def after(self, moment: datetime) -> datetime | None:
        """When the first price dated after ``moment`` was stated; None when none is."""
        index = bisect_right(self.times, moment, self._first)
        return self.times[index] if index < len(self.times) else None


class PriceTable:
    """``market.prices`` of every asset, versioned by event time."""

    def __init__(self, reporting_currency: str, history: timedelta = DEFAULT_PRICE_HISTORY) -> None:
        if history < timedelta(0):
            raise ValueError("the price history must not be negative")
        self.reporting_currency = reporting_currency
        self.history = history
        self.assets: dict[str, PriceHistory] = {}
        # the newest price of any asset: how old the price feed is, for reports
        self.newest: datetime | None = None

    def latest(self, asset: str) -> Price | None:
        kept = self.assets.get(asset)
        return None if kept is None else kept.newest

    def newer_than_held(self, price: Price) -> bool:
        kept = self.assets.get(price.asset)
        return kept is None or price.ts > kept.newest.ts

    def take(self, price: Price) -> None:
        """Add ``price`` (the caller checked it is newer than the asset's newest)."""
        kept = self.assets.get(price.asset)
        if kept is None:
            kept = self.assets[price.asset] = PriceHistory()
        kept.append(price, self.history)
        if self.newest is None or price.ts > self.newest:
            self.newest = price.ts

    def at(self, asset: str, moment: datetime) -> Price | None:
        """The price of ``asset`` in force at ``moment``: the newest dated at or before it."""
        kept = self.assets.get(asset)
        return None if kept is None else kept.at(moment)

    def at_or_oldest(self, asset: str, moment: datetime) -> Price | None:
        """The price in force at ``moment``, or the oldest kept when all are later.

        Converts a trade dated before the first price of its currency that is kept:
        it would otherwise wait for a price that can never come.
        """
        kept = self.assets.get(asset)
        if kept is None:
            return None
        return kept.at(moment) or kept.oldest

    def next_after(self, asset: str, moment: datetime) -> datetime | None:
        kept = self.assets.get(asset)
        return None if kept is None else kept.after(moment)
