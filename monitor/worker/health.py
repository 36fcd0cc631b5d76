"""Is the worker consuming? What ``GET /healthz`` answers, and why not when it is not.

A worker consumes when three things hold:

- its own timer runs (time passes for the rules, the journal is flushed: a timer
  stuck on a flush the brokers never take, or on a blocked event loop, stops);
- it is not in a rebalance (partitions moving, state being recovered);
- its Kafka consumer has had a fetch answer from the brokers lately.

The last is the signal of a live connection. A consumer fetches every partition
assigned to it over and over; a broker answers each fetch at once when it has
records, and after at most the fetch wait (0.1 s here) when it has none,
so an idle worker with a live connection hears from its brokers every second or
two. When the brokers are unreachable the answers stop. aiokafka records the
wall time of the latest answer per partition (``last_poll_timestamp``, public);
the newest over the assignment is when the worker last heard from Kafka. Every
worker reads every partition of ``market.prices`` (a global table), so there is
always something to fetch. The group's heartbeats are not exposed by
aiokafka (the time of the last good one is a local variable of its heartbeat
loop); a member the group drops must rejoin, which is a rebalance.

:func:`assess` decides, from plain numbers; :func:`newest_fetch` reads the
consumer. The worker passes the one to the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# How long the timer may go without running before the worker is stalled, at least.
MIN_TICK_SILENCE = 10.0


@dataclass(frozen=True, slots=True)
class Health:
    """The answer of ``/healthz``: healthy, or not and why (one sentence to act on)."""

    healthy: bool
    reason: str | None = None

    @property
    def http_status(self) -> int:
        return 200 if self.healthy else 503

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"healthy": self.healthy}
        if self.reason is not None:
            document["reason"] = self.reason
        return document


HEALTHY = Health(True)


def tick_silence_limit(tick_seconds: float) -> float:
    """How long the timer may go without running: five intervals, and never under 10 s."""
    return max(MIN_TICK_SILENCE, 5 * tick_seconds)


def assess(
    *,
    since_tick: float | None,
    tick_limit: float,
    rebalancing: bool,
    since_fetch: float | None,
    fetch_limit: float,
) -> Health:
    """Whether a worker consumes, from how long ago things last happened (seconds).

    ``since_tick``: since the worker's timer last ran (None: never yet).
    ``since_fetch``: since its consumer last had a fetch answer from a broker
    (None: none since the worker started). Each is judged against its limit; the
    first thing wrong is the reason.
    """
    if since_tick is None:
        return Health(False, "starting: the worker's timer has not run yet")
    if since_tick >= tick_limit:
        return Health(
            False,
            f"stalled: the worker's timer last ran {since_tick:.0f} s ago (limit "
            f"{tick_limit:.0f} s); a commit waits for Kafka or the event loop is blocked",
        )
    if rebalancing:
        return Health(False, "rebalancing: partitions are being reassigned and state recovered")
    if since_fetch is None:
        return Health(False, "connecting: no answer from Kafka to a fetch yet")
    if since_fetch >= fetch_limit:
        return Health(
            False,
            f"cut off from Kafka: no answer from a broker to a fetch for {since_fetch:.0f} s "
            f"(limit {fetch_limit:.0f} s); brokers unreachable or refusing this worker",
        )
    return HEALTHY


def liveness(*, since_tick: float | None, tick_limit: float) -> Health:
    """Whether the worker's process is alive (``GET /livez``): its own timer runs.

    Kafka, rebalances and recovery do not count: a restart mends none of them, so a
    liveness probe that restarted workers while the brokers are away would only
    add state recovery to the outage. Before the first tick it is alive (starting).
    """
    if since_tick is not None and since_tick >= tick_limit:
        return Health(
            False,
            f"stalled: the worker's timer last ran {since_tick:.0f} s ago (limit "
            f"{tick_limit:.0f} s); the event loop is blocked or a commit waits forever",
        )
    return HEALTHY


def newest_fetch(consumer: Any) -> float | None:
    """When ``consumer`` (an aiokafka consumer) last had a fetch answer, in Unix seconds.

    The newest over the partitions assigned to it; None when none has been answered
    (or nothing is assigned). A partition listed a moment ago may be revoked by
    the time it is asked about, which aiokafka asserts.
    """
    try:
        assigned = list(consumer.assignment())
    except RuntimeError:  # the consumer thread changed the assignment meanwhile
        return None
    newest: int | None = None
    for tp in assigned:
        try:
            stamp = consumer.last_poll_timestamp(tp)  # ms, wall clock; None before a fetch
        except (AssertionError, AttributeError, KeyError):
            continue
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
    return None if newest is None else newest / 1000
