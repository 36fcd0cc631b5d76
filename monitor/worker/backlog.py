"""How far a read of partitions up to known offsets has come: progress, and a stall.

A worker reads two backlogs before a task it is given takes input: the task's
changelog partition to its end (its state), and the price records up to the
task's committed position (its price table). Both are as long as the state and
the price history make them: a second for a thousand exchanges, minutes for a
large deployment on a slow broker. So neither has a deadline on its whole
length, which a large enough state would never meet (the task would be opened
again and again, never to take input). What ends such a read early is a
*stall*: no partition moved for ``stall`` seconds.

Meanwhile the read says how far it has come, every
:data:`~monitor.progress.PROGRESS_SECONDS`, in the worker's log::

    tasks [0, 3]: restoring changelog reserve-monitor-journal-changelog: 41% (1,204,000
    of 2,936,512 offsets), 120,400 offsets/s, about 14 s left

Offsets, not records: a compacted topic's offsets skip the records compaction
removed, and an offset read is the work done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

from monitor.progress import PROGRESS_SECONDS, rough_duration

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Hashable)  # a partition, e.g. aiokafka's TopicPartition


class Stalled(TimeoutError):
    """No partition of a backlog moved for the time allowed."""


class BacklogRead(Generic[P]):
    """A read of partitions from ``start`` up to ``end`` offsets (exclusive).

    The reader tells it the partitions' positions after each fetch (:meth:`at`);
    it logs a progress line when one is due and raises :class:`Stalled` when no
    position has moved for ``stall`` seconds while some partition is short of its end.
    """

    def __init__(
        self,
        what: str,
        start: Mapping[P, int],
        end: Mapping[P, int],
        *,
        stall: float,
        every: float = PROGRESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self._start = {p: min(start[p], end[p]) for p in end}
        self._end = dict(end)
        self._stall, self._every, self._clock = stall, every, clock
        self._positions = dict(self._start)
        self._total = sum(self._end[p] - self._start[p] for p in self._end)
        self._began = self._moved = clock()
        self._next = self._began + every

    @property
    def done(self) -> bool:
        """Every partition is read to its end."""
        return all(self._positions[p] >= self._end[p] for p in self._end)

    def behind(self) -> list[P]:
        """The partitions short of their end."""
        return [p for p in self._end if self._positions[p] < self._end[p]]

    def at(self, positions: Mapping[P, int]) -> None:
        """The positions now (of some or all partitions); raises :class:`Stalled`."""
        now = self._clock()
        for p, position in positions.items():
            if p in self._positions and position > self._positions[p]:
                self._positions[p] = position
                self._moved = now
        if self.done:
            return
        if now - self._moved >= self._stall:
            raise Stalled(
                f"{self.what}: nothing read for {self._stall:g} s, at {self._read():,} of "
                f"{self._total:,} offsets (behind: {self.behind()})"
            )
        if now >= self._next:
            self._next = now + self._every
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """How far the read has come, as logged."""
        now = self._clock() if now is None else now
        read, elapsed = self._read(), max(now - self._began, 1e-9)
        share = read / self._total if self._total else 1.0
        text = (
            f"{self.what}: {share:.0%} ({read:,} of {self._total:,} offsets), "
            f"{read / elapsed:,.0f} offsets/s"
        )
        if 0 < share < 1:
            text += f", about {rough_duration(elapsed * (1 - share) / share)} left"
        return text

    def _read(self) -> int:
        return sum(min(self._positions[p], self._end[p]) - self._start[p] for p in self._end)
