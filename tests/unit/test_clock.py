"""The worker's event-time clock: the newest event time seen, moved on by wall time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.core.clock import WatermarkClock

T0 = datetime(2024, 5, 31, 13, 26, tzinfo=UTC)


def test_no_time_before_the_first_event() -> None:
    assert WatermarkClock().now(5.0) is None


def test_time_runs_on_from_the_newest_event_by_the_wall_time_since() -> None:
    clock = WatermarkClock()
    clock.observe(T0, 10.0)
    assert clock.now(10.0) == T0
    assert clock.now(12.5) == T0 + timedelta(seconds=2.5)


def test_an_older_event_never_moves_the_clock_back() -> None:
    clock = WatermarkClock()
    clock.observe(T0, 10.0)
    clock.observe(T0 - timedelta(minutes=5), 11.0)
    assert clock.now(11.0) == T0 + timedelta(seconds=1)


def test_an_event_after_now_moves_the_clock_to_it() -> None:
    clock = WatermarkClock()
    clock.observe(T0, 10.0)
    later = T0 + timedelta(seconds=30)
    clock.observe(later, 11.0)
    assert clock.now(11.0) == later
    assert clock.now(13.0) == later + timedelta(seconds=2)


def test_an_event_after_the_newest_but_not_after_now_leaves_the_clock_running() -> None:
    clock = WatermarkClock()
    clock.observe(T0, 10.0)
    clock.observe(T0 + timedelta(seconds=2), 15.0)  # now is T0 + 5 s
    assert clock.now(15.0) == T0 + timedelta(seconds=5)


def test_seconds_given_by_the_caller_count_as_the_event_time() -> None:
    given, computed = WatermarkClock(), WatermarkClock()
    for at, moment in enumerate([T0, T0 + timedelta(seconds=3), T0 + timedelta(microseconds=1)]):
        given.observe(moment, float(at), moment.timestamp())
        computed.observe(moment, float(at))
        assert given.now(float(at)) == computed.now(float(at))
