"""One input record in, exactly one outcome out: the worker's per-record decision.

:func:`take` decodes the record's bytes, takes the event into the engine at its
append time (which judges the moments it closes) and says how the record is
accounted for (``reserve_monitor_events_total``). It never raises, whatever the
bytes, and it needs no Kafka: the worker sends what it decides (journal,
dead letter), tests call it directly. The worker decodes a fetch's records
together (:func:`decoded`) and takes each with :func:`admit`, the same decision
without the :class:`Verdict`.

The worker also refuses an event dated too far ahead of its record's append
time (:func:`ahead_of_clock`): an exchange's clock follows the newest event it
applied, so one producer with a broken clock would otherwise age every feed of
that exchange at once. Measured against the append time, the bound judges a
backlog as it judged the same records live. The engine never reads a wall clock, and
``replay``, which has none, takes every event as dated.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome, Step
from monitor.core.errors import InvalidEvent
from monitor.core.events import Event, Topic, decode
from monitor.core.money import rfc3339

log = logging.getLogger(__name__)

# seconds: how near the bound of RESERVE_MONITOR_MAX_FUTURE_SECONDS a quick check on
# floats leaves the decision to the exact one (a float of an epoch time is exact to
# about a microsecond)
_NEAR = 0.001
# bound once: Python 3.11 takes 0.1 µs to read a member off its enum class
_APPLIED, _INVALID = Outcome.APPLIED, Outcome.INVALID


@dataclass(slots=True)  # not frozen: made once a record, and a frozen init costs twice
class Verdict:
    """How one record is accounted for.

    ``step`` is the engine's step, present unless the record is invalid;
    ``error`` (``"<field>: <message>"``, for the dead-letter topic) exactly when it is.
    """

    outcome: Outcome
    step: Step | None = None
    error: str | None = None
    event_time: datetime | None = None


def ahead_of_clock(
    event_time: datetime, wall_now: datetime, max_ahead: timedelta
) -> InvalidEvent | None:
    """The error of an event dated more than ``max_ahead`` after ``wall_now``, else None."""
    ahead = event_time - wall_now
    if ahead <= max_ahead:
        return None
    return InvalidEvent(
        "ts",
        f"{rfc3339(event_time)} is {math.ceil(ahead.total_seconds())} s ahead of the "
        f"time its record was appended ({rfc3339(wall_now.replace(microsecond=0))}); at most "
        f"{max_ahead.total_seconds():g} s is accepted (RESERVE_MONITOR_MAX_FUTURE_SECONDS)",
    )


def decoded(topic: Topic, key: bytes | None, value: bytes | None) -> Event | str:
    """The event a record's bytes carry, or the error that sends them to the dead letters."""
    try:
        return decode(topic, key, value or b"")
    except InvalidEvent as error:
        return str(error)
    except Exception as error:  # a decoding bug must not stop the monitor: keep the bytes
        log.exception("decoding failed on a record of %s", topic.value)
        return f"internal: {type(error).__name__}: {error}"


def take(
    engine: Engine,
    clock: WatermarkClock,
    topic: Topic,
    key: bytes | None,
    value: bytes | None,
    monotonic_now: float,
    *,
    wall_now: datetime,
    max_ahead: timedelta,
    appended: datetime | None = None,
) -> Verdict:
    """Decode and apply one record of ``topic``; never raises.

    ``wall_now`` is the time an event may not be dated more than ``max_ahead``
    after: the record's append time when it has one, so that a backlog is judged
    as it was live, else the worker's wall clock. ``appended`` is the record's
    timestamp (its append time on a LogAppendTime topic).
    """
    event = decoded(topic, key, value)
    result = admit(
        engine,
        clock,
        topic,
        event,
        monotonic_now,
        wall_now=wall_now.timestamp(),
        max_ahead=max_ahead,
        appended=None if appended is None else appended.timestamp(),
    )
    if isinstance(result, str):
        return Verdict(Outcome.INVALID, error=result)
    assert result.outcome is not None and not isinstance(event, str)
    return Verdict(result.outcome, step=result, event_time=event.ts)


def admit(
    engine: Engine,
    clock: WatermarkClock,
    topic: Topic,
    event: Event | str,
    monotonic_now: float,
    *,
    wall_now: float,
    max_ahead: timedelta,
    appended: float | None,
) -> Step | str:
    """:func:`take` of a record already decoded, times in seconds since the epoch, as the
    worker has them: the engine's step (its outcome neither invalid), or the error that
    makes the record a dead letter. Never raises."""
    if isinstance(event, str):
        return event
    ts = event.ts
    seconds = ts.timestamp()
    # near the bound or past it, the check is made exactly, on datetimes
    if seconds - wall_now > max_ahead.total_seconds() - _NEAR:
        too_far = ahead_of_clock(ts, datetime.fromtimestamp(wall_now, UTC), max_ahead)
        if too_far is not None:
            return str(too_far)
    try:
        step = engine.take_at(event, appended)
    except Exception as error:  # an engine bug must not stop the monitor: keep the bytes
        log.exception("engine failed on a record of %s", topic.value)
        return f"internal: {type(error).__name__}: {error}"
    outcome = step.outcome
    if outcome is _APPLIED:
        # only an applied event moves time: a rejected, duplicate or stale one dated
        # ahead would otherwise age every figure of every exchange
        clock.observe(ts, monotonic_now, seconds)
    elif outcome is _INVALID:
        return step.error or "rejected"
    return step
