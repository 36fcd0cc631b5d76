"""How far a long read of JSON Lines files has come, said on stderr as it goes.

``replay`` and ``report`` take a month of a market's records at tens of thousands a
second: minutes of work that would otherwise print nothing until the end. Every
:data:`PROGRESS_SECONDS` of wall time they say, on stderr (never on stdout, where the
CloudEvents go), how much of the files is read, the records taken, the record time
reached, the rate and the time left, in one line::

    replay: 31% of 1.2 GB read, 2,614,400 records, record time 2026-01-09T17:42:10Z,
    71,233 records/s, about 1 min left

A read that ends within the first interval says nothing more than it did before.
Stdin says nothing: a pipe has no size, and a live one (``watch evm --jsonl - |
reserve-monitor replay -``) never ends.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO, TextIO

from monitor.core.money import rfc3339

PROGRESS_SECONDS = 10.0


class Progress:
    """Says how far the read of ``files`` has come on ``err``, every ``every`` seconds
    (:data:`PROGRESS_SECONDS` unless given).

    The driver calls :meth:`taken` after each batch of lines it took. The share read
    is the files' bytes read over their sizes (regular files; a named pipe has no
    size, and then only the counts are said).
    """

    def __init__(
        self,
        what: str,
        files: Sequence[TextIO],
        err: IO[str],
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what, self._err, self._clock = what, err, clock
        self._every = PROGRESS_SECONDS if every is None else every
        sizes = [os.fstat(f.fileno()) for f in files]
        self._files = list(files)
        self._size = (
            sum(s.st_size for s in sizes) if all(stat.S_ISREG(s.st_mode) for s in sizes) else 0
        )
        self._started = clock()
        self._next = self._started + self._every
        self._records = 0
        self._reached: datetime | None = None

    def taken(self, records: int, reached: datetime | None) -> None:
        """``records`` more lines were taken, the last of them dated ``reached`` (its record
        time, or its event's; None for a line with neither)."""
        self._records += records
        if reached is not None:
            self._reached = reached
        now = self._clock()
        if now >= self._next:
            self._next = now + self._every
            self._err.write(self._line(now) + "\n")
            self._err.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        parts = []
        share = None
        if self._size:
            read = sum(f.buffer.tell() for f in self._files)
            share = min(read / self._size, 1.0)
            parts.append(f"{share:.0%} of {_bytes(self._size)} read")
        parts.append(f"{self._records:,} records")
        if self._reached is not None:
            parts.append(f"record time {rfc3339(self._reached)}")
        parts.append(f"{self._records / elapsed:,.0f} records/s")
        if share is not None and 0 < share < 1:
            parts.append(f"about {rough_duration(elapsed * (1 - share) / share)} left")
        return f"{self._what}: " + ", ".join(parts)


def _bytes(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def rough_duration(seconds: float) -> str:
    """A time left, as people say it: ``13 s``, ``4 min``, ``1.5 h``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
