"""Trades of one market summed per fixed interval, each interval closed once and only once.

Pure: no ccxt, no clock, no I/O. The feed hands in trades as they come (from a
websocket batch, or a REST page that overlaps what was already seen) and asks
to close the intervals that ended before a time it knows everything is in.
A trade is counted once, by its venue id, however often it is delivered.

An interval is ``[start, start + length)`` in the venue's trade time (ms since
the epoch), ``start`` a multiple of ``length``. Nothing before ``origin`` (the
first interval the feed is responsible for) is counted.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

# Products and sums are exact: a result that would be rounded raises instead of drifting.
_EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One trade as the venue reported it: its id (increasing with time), time, price, amount."""

    id: int
    ts_ms: int
    price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class IntervalVolume:
    """The traded notional (Σ price * amount, in the quote currency) of one closed interval."""

    market: str
    start_ms: int
    end_ms: int
    notional: Decimal
    trades: int


@dataclass(slots=True)
class _Bucket:
    notional: Decimal = Decimal(0)
    ids: set[int] = field(default_factory=set)


def interval_start(ts_ms: int, length_ms: int) -> int:
    """The start of the interval holding ``ts_ms``."""
    return ts_ms - ts_ms % length_ms


class IntervalBook:
    """The open intervals of one market, and where the closed ones end.

    ``last_id`` is the highest trade id counted so far: where a REST backfill
    resumes. ``late`` counts trades first seen after their interval closed;
    the feed closes an interval only once it has everything up to its end, so
    this stays 0 unless the venue reports a trade later than the feed allows
    for (they are left out, and the feed logs them).
    """

    def __init__(self, market: str, length_ms: int, origin_ms: int) -> None:
        if length_ms <= 0:
            raise ValueError("the interval length must be positive")
        self.market = market
        self.length_ms = length_ms
        self.closed_until_ms = interval_start(origin_ms, length_ms)
        self.last_id: int | None = None
        self.late = 0
        self._open: dict[int, _Bucket] = {}
        self._closed_last_id: int | None = None  # highest id in a closed interval

    def add(self, trades: Iterable[VenueTrade]) -> int:
        """Count the trades not counted yet; return how many were new."""
        added = 0
        for trade in trades:
            if trade.ts_ms < self.closed_until_ms:
                already_closed = self._closed_last_id is not None and (
                    trade.id <= self._closed_last_id
                )
                if not already_closed and self.last_id is not None and trade.id > self.last_id:
                    self.late += 1  # new, but its interval has been published
                    self.last_id = trade.id  # so a backfill does not fetch it again
                continue
            start = interval_start(trade.ts_ms, self.length_ms)
            bucket = self._open.setdefault(start, _Bucket())
            if trade.id in bucket.ids:
                continue
            bucket.ids.add(trade.id)
            bucket.notional = _EXACT.add(
                bucket.notional, _EXACT.multiply(trade.price, trade.amount)
            )
            if self.last_id is None or trade.id > self.last_id:
                self.last_id = trade.id
            added += 1
        return added

    def close(self, until_ms: int) -> list[IntervalVolume]:
        """Close every interval that ends at or before ``until_ms``, oldest first.

        Intervals without trades close too, but give no volume: a zero adds nothing.
        """
        boundary = interval_start(until_ms, self.length_ms)
        if boundary <= self.closed_until_ms:
            return []
        closed = []
        for start in sorted(s for s in self._open if s < boundary):
            bucket = self._open.pop(start)
            closed.append(
                IntervalVolume(
                    self.market, start, start + self.length_ms, bucket.notional, len(bucket.ids)
                )
            )
            highest = max(bucket.ids)
            if self._closed_last_id is None or highest > self._closed_last_id:
                self._closed_last_id = highest
        self.closed_until_ms = boundary
        return closed
