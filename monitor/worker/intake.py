"""One input record in, exactly one outcome out: the worker's per-record decision.

:func:`take` decodes the record's bytes, takes the event into the engine (the
worker settles the engine apart, on a timer) and says how the record is
accounted for (``reserve_monitor_events_total``). It never raises, whatever the
bytes, and it needs no Kafka: the worker sends what it decides (journal,
dead letter), tests call it directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome, Step
from monitor.core.errors import InvalidEvent
from monitor.core.events import Topic, decode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one record is accounted for.

    ``step`` is the engine's step, present unless the record is invalid;
    ``error`` (``"<field>: <message>"``, for the dead-letter topic) exactly when it is.
    """

    outcome: Outcome
    step: Step | None = None
    error: str | None = None
    event_time: datetime | None = None


def take(
    engine: Engine,
    clock: WatermarkClock,
    topic: Topic,
    key: bytes | None,
    value: bytes | None,
    monotonic_now: float,
) -> Verdict:
    """Decode and apply one record of ``topic``; never raises."""
    try:
        event = decode(topic, key, value or b"")
    except InvalidEvent as error:
        return Verdict(Outcome.INVALID, error=str(error))
    except Exception as error:  # a decoding bug must not stop the monitor: keep the bytes
        log.exception("decoding failed on a record of %s", topic.value)
        return Verdict(Outcome.INVALID, error=f"internal: {type(error).__name__}: {error}")
    try:
        step = engine.take(event)
    except Exception as error:  # an engine bug must not stop the monitor: keep the bytes
        log.exception("engine failed on a record of %s", topic.value)
        return Verdict(Outcome.INVALID, error=f"internal: {type(error).__name__}: {error}")
    assert step.outcome is not None
    if step.outcome is Outcome.INVALID:
        return Verdict(Outcome.INVALID, error=step.error or "rejected")
    if step.outcome is Outcome.APPLIED:
        # only an applied event moves time: a rejected, duplicate or stale one dated
        # in the future would otherwise age every figure of every exchange
        clock.observe(event.ts, monotonic_now)
    return Verdict(step.outcome, step=step, event_time=event.ts)
