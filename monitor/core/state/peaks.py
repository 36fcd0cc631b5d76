"""The largest value a quantity took within a trailing window of event time.

``ops.hot_wallet_drain`` compares the hot-wallet value now with its peak over
the last hour or so. The value is a step function of time: each
:meth:`PeakWindow.observe` starts a new level that holds until the next one.
A level counts in the window ``[now - window, now]`` while it still held at
``now - window``: a value held for hours and then drained in one transfer is
compared with what it was just before the transfer, however long ago it was
last observed, and the drop leaves the window ``window`` after it happened.

The levels are kept in a monotonic deque, values strictly falling from front
to back: a new level drops every level at the back that is not larger than
itself (it will outlast them), and the front leaves once it ended before the
window. Each level enters and leaves the deque once, so observing is O(1)
amortised and the peak is the front, read in O(1). Memory is bounded by the
number of distinct falling levels inside one window.

Every level added, changed or dropped is recorded for journalling (``dirty``,
``dropped``), so a driver with durable storage can rebuild the window after a
restart with :meth:`PeakWindow.restore`.
"""

from __future__ import annotations

import bisect
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from monitor.core.money import rfc3339


class Level:
    """``value`` held from ``start`` until ``end`` (None: still held).

    A plain class, not a dataclass: compiled, its ``__init__`` is native, where a
    dataclass's is Python that the dataclass module writes (a level is made at every
    price moment of an exchange).
    """

    __slots__ = ("end", "seq", "start", "value")

    def __init__(
        self, seq: int, start: datetime, value: Decimal, end: datetime | None = None
    ) -> None:
        self.seq = seq
        self.start = start
        self.value = value
        self.end = end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return (self.seq, self.start, self.value, self.end) == (
            other.seq,
            other.start,
            other.value,
            other.end,
        )

    def __repr__(self) -> str:
        return f"Level({self.seq}, {self.start!r}, {self.value!r}, {self.end!r})"

    def to_document(self) -> dict[str, Any]:
        return {
            "start": rfc3339(self.start),
            "value": str(self.value),
            "end": None if self.end is None else rfc3339(self.end),
        }

    @classmethod
    def from_document(cls, seq: int, document: dict[str, Any]) -> Level:
        end = document.get("end")
        return cls(
            seq,
            datetime.fromisoformat(document["start"]),
            Decimal(document["value"]),
            None if end is None else datetime.fromisoformat(end),
        )


class PeakWindow:
    """Peak of a step function over the trailing ``window`` (see the module docstring)."""

    def __init__(self, window: timedelta) -> None:
        if window <= timedelta(0):
            raise ValueError("the window must be positive")
        self.window = window
        self._levels: deque[Level] = deque()
        self._next_seq = 0
        self.dirty: dict[int, Level] = {}
        self.dropped: set[int] = set()
        self.journalled = True  # keep what changed for journal(); False: nobody asks
        # levels numbered from here on were made since the last journal(): never written,
        # a level of them dropped needs no tombstone
        self._unwritten_from = 0

    @property
    def current(self) -> Level | None:
        """The level held now (the newest), or None before the first observation."""
        return self._levels[-1] if self._levels else None

    def observe(self, now: datetime, value: Decimal) -> None:
        """The value is ``value`` from ``now`` on (``now`` never earlier than before)."""
        self.advance(now)
        levels = self._levels
        if levels:
            last = levels[-1]
            if last.value == value:
                return
            last.end = now
            if self.journalled:
                self.dirty[last.seq] = last
        while levels and levels[-1].value <= value:
            self._drop(levels.pop())
        level = Level(self._next_seq, now, value)
        self._next_seq += 1
        levels.append(level)
        if self.journalled:
            self.dirty[level.seq] = level

    def advance(self, now: datetime) -> None:
        """Let the window move on to end at ``now``: levels over before it leave."""
        horizon = now - self.window
        levels = self._levels
        while levels and levels[0].end is not None and levels[0].end < horizon:
            self._drop(levels.popleft())

    def peak(self) -> Level | None:
        """The largest level in the window as last advanced; None before any observation."""
        return self._levels[0] if self._levels else None

    def peak_leaves(self) -> datetime | None:
        """When the peak level leaves the window, so a lower level may become the peak."""
        if not self._levels or self._levels[0].end is None:
            return None
        return self._levels[0].end + self.window

    def levels(self) -> list[Level]:
        return list(self._levels)

    def restore(self, level: Level) -> None:
        """Put back a level journalled earlier (any order)."""
        seqs = [held.seq for held in self._levels]
        at = bisect.bisect_left(seqs, level.seq)
        if at < len(seqs) and seqs[at] == level.seq:
            self._levels[at] = level
        else:
            self._levels.insert(at, level)
        self._next_seq = max(self._next_seq, level.seq + 1)

    def journal(self) -> tuple[list[Level], list[int]]:
        """Levels written and levels dropped since the last call; clears both."""
        written = [level for seq, level in sorted(self.dirty.items()) if seq not in self.dropped]
        dropped = sorted(self.dropped)
        self.dirty, self.dropped = {}, set()
        self._unwritten_from = self._next_seq
        return written, dropped

    def _drop(self, level: Level) -> None:
        if self.journalled:
            self.dirty.pop(level.seq, None)
            if level.seq < self._unwritten_from:  # written once: its key must go
                self.dropped.add(level.seq)
