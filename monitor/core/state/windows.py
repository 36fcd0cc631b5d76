"""Rolling sums in event time, in fixed buckets.

A :class:`RollingSum` keeps one running sum per bucket and a running total of
the buckets inside the window, so adding an amount and reading the total are
O(1) amortised, and memory is bounded by the number of buckets in the window.
The window at time ``now`` holds the buckets ``(b(now) - n, b(now)]``, where
``b(t)`` is the bucket of ``t`` and ``n`` the number of buckets in the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from monitor.core.money import MONEY_CONTEXT, ZERO

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# the context's methods bound once (Final: the compiled module keeps them in C statics)
_add: Final = MONEY_CONTEXT.add
_subtract: Final = MONEY_CONTEXT.subtract


class RollingSum:
    """Sum of amounts over the trailing ``window``, in buckets of ``bucket``."""

    def __init__(self, window: timedelta, bucket: timedelta) -> None:
        if bucket <= timedelta(0) or window < bucket or window % bucket:
            raise ValueError("the window must be a positive whole number of buckets")
        self.window = window
        self.bucket = bucket
        self._bucket_seconds = int(bucket.total_seconds())
        self._size = window // bucket
        self._buckets: dict[int, Decimal] = {}
        self._total = ZERO
        self._newest = -(2**62)  # the bucket of the newest time seen
        self._dropped: list[int] = []
        self.journalled = True  # keep the buckets dropped for evicted(); False: nobody asks
        self._last_moment: datetime | None = None  # the last moment bucketed, and its bucket
        self._last_bucket = 0

    def bucket_of(self, moment: datetime) -> int:
        if moment is self._last_moment:  # a trade's time is read again and again
            return self._last_bucket
        since = moment - _EPOCH  # whole seconds (event times are after the epoch) as ints:
        # timedelta.total_seconds() costs a method call and a float
        bucket = (since.days * 86400 + since.seconds) // self._bucket_seconds
        self._last_moment, self._last_bucket = moment, bucket
        return bucket

    def add(self, moment: datetime, amount: Decimal) -> int | None:
        """Add ``amount`` at ``moment``; the bucket it went to, or None when too old."""
        index = self.bucket_of(moment)
        if index > self._newest:
            self._advance(index)
        elif index <= self._newest - self._size:
            return None
        self._buckets[index] = _add(self._buckets.get(index, ZERO), amount)
        self._total = _add(self._total, amount)
        return index

    def admits(self, moment: datetime) -> bool:
        """Whether an amount at ``moment`` would still land in the window (see :meth:`add`)."""
        return self.bucket_of(moment) > self._newest - self._size

    def total(self, now: datetime) -> Decimal:
        """The sum over the window that ends at ``now`` (never moves time backwards)."""
        index = self.bucket_of(now)
        if index > self._newest:
            self._advance(index)
        return self._total

    def evicted(self) -> list[int]:
        """Buckets dropped since the last call, for journalling; clears the list."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def restore(self, index: int, amount: Decimal) -> None:
        """Put back a bucket journalled earlier (state recovery)."""
        if index <= self._newest - self._size:
            return
        if index > self._newest:
            self._advance(index)
        self._total = _add(_subtract(self._total, self._buckets.get(index, ZERO)), amount)
        self._buckets[index] = amount

    def next_eviction(self) -> datetime | None:
        """When the oldest bucket held leaves the window, changing the total; None if empty."""
        if not self._buckets:
            return None
        return _EPOCH + self.bucket * (min(self._buckets) + self._size)

    def held(self, index: int) -> Decimal | None:
        """The sum held in bucket ``index``; None when the window holds no such bucket."""
        return self._buckets.get(index)

    def amount(self, index: int) -> Decimal:
        """The sum held in bucket ``index`` (zero when none)."""
        return self._buckets.get(index, ZERO)

    def buckets(self) -> dict[int, Decimal]:
        return dict(self._buckets)

    def _advance(self, index: int) -> None:
        self._newest = index
        cutoff = index - self._size  # buckets at or below the cutoff leave the window
        if not self._buckets:
            return
        stale = [b for b in self._buckets if b <= cutoff]
        if not stale:
            return
        for b in stale:
            self._total = _subtract(self._total, self._buckets.pop(b))
            if self.journalled:
                self._dropped.append(b)
