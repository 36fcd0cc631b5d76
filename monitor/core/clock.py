"""Event time for a live worker: the newest event time seen, moved on by elapsed time.

Windows and staleness run on event time. Replay's clock is the newest event
time seen. A live worker must also notice time passing when no events arrive
(a feed that stops is a finding), so its clock is the newest event time plus
the wall time elapsed since that event was seen. It never runs backwards.

The worker observes every record it applies, so the comparison is made on
seconds since the epoch, which the worker has already computed for each record:
floats, exact to the microsecond until the year 2242 and to some tens of
microseconds after it, more than a measure of feed ages needs.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta


class WatermarkClock:
    """Newest event time seen, advanced by elapsed monotonic seconds since."""

    def __init__(self) -> None:
        self._newest: datetime | None = None
        self._newest_seconds = -math.inf  # the same, in seconds since the epoch
        self._seen_at = 0.0

    def observe(
        self, event_time: datetime, monotonic_now: float, seconds: float | None = None
    ) -> None:
        """An event dated ``event_time`` (``seconds`` since the epoch, when the caller has
        them) was applied at ``monotonic_now``: the clock moves to it if it is after now."""
        if seconds is None:
            seconds = event_time.timestamp()
        newest = self._newest_seconds
        if seconds <= newest:
            return  # not after the newest, so not after now, which is never earlier
        if seconds > newest + max(0.0, monotonic_now - self._seen_at):
            self._newest, self._newest_seconds = event_time, seconds
            self._seen_at = monotonic_now

    def now(self, monotonic_now: float) -> datetime | None:
        """The current event time; None before any event."""
        if self._newest is None:
            return None
        return self._newest + timedelta(seconds=max(0.0, monotonic_now - self._seen_at))
