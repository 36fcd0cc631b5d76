"""Event time for a live worker: the newest event time seen, moved on by elapsed time.

Windows and staleness run on event time. Replay's clock is the newest event
time seen. A live worker must also notice time passing when no events arrive
(a feed that stops is a finding), so its clock is the newest event time plus
the wall time elapsed since that event was seen. It never runs backwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class WatermarkClock:
    """Newest event time seen, advanced by elapsed monotonic seconds since."""

    def __init__(self) -> None:
        self._newest: datetime | None = None
        self._seen_at = 0.0

    def observe(self, event_time: datetime, monotonic_now: float) -> None:
        newest = self._newest
        if newest is not None and event_time <= newest:
            return  # not after the newest, so not after now, which is never earlier
        now = self.now(monotonic_now)
        if now is None or event_time > now:
            self._newest = event_time
            self._seen_at = monotonic_now

    def now(self, monotonic_now: float) -> datetime | None:
        """The current event time; None before any event."""
        if self._newest is None:
            return None
        return self._newest + timedelta(seconds=max(0.0, monotonic_now - self._seen_at))
