"""Events dated ahead of the worker's wall clock: refused at intake, before the engine.

One producer with a broken clock must not move the time every figure of every
exchange is judged at. The worker's per-record decision (:func:`take`) refuses
an event dated more than the tolerance after its wall clock, as invalid, and
the engine and the worker's clock are as if the record had never come.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome
from monitor.core.errors import InvalidEvent
from monitor.core.events import Topic
from monitor.core.output.report import adequacy_report
from monitor.core.policy import load_policy
from monitor.settings import Settings
from monitor.worker.intake import ahead_of_clock, take
from tests.unit.builders import (
    T0,
    Doc,
    at,
    encode,
    feed,
    fixed_overheads,
    insurance,
    liability,
    own_funds,
    price,
    reserve_fund,
    topic_for,
    trade,
    wallet,
)

# the worker's wall clock, a little after the story's events
WALL_NOW = at(minutes=10)
MAX_AHEAD = timedelta(seconds=300)


def _known_exchange() -> tuple[Engine, WatermarkClock]:
    """dmm priced, funded and 97% cold at T0; the worker's clock at T0."""
    engine = Engine(load_policy())
    feed(
        engine,
        price("10700000"),
        reserve_fund(5_000_000_000),
        wallet("97000"),
        wallet("3000", wallet_id="btc-hot-1", custody="hot"),
        trade("1000000"),
    )
    clock = WatermarkClock()
    clock.observe(T0, 0.0)
    return engine, clock


def _take(
    engine: Engine,
    clock: WatermarkClock,
    document: Doc,
    max_ahead: timedelta = MAX_AHEAD,
    wall_now: datetime = WALL_NOW,
) -> tuple[Outcome, str | None]:
    verdict = take(
        engine,
        clock,
        topic_for(document),
        None,
        encode(document),
        1.0,
        wall_now=wall_now,
        max_ahead=max_ahead,
    )
    return verdict.outcome, verdict.error


def _every_kind(when: datetime) -> list[Doc]:
    """One valid event of each kind, dated ``when``."""
    return [
        trade("1250000", when=when),
        wallet("1", when=when),
        price("1", when=when),
        liability("90000", when=when),
        reserve_fund(1, when=when),
        insurance(1_000_000_000, valid_from=at(days=-1), valid_to=at(days=300), when=when),
        own_funds(900_000, when=when),
        fixed_overheads(2_400_000, when=when),
    ]


@pytest.mark.parametrize("document", _every_kind(datetime(2099, 1, 1, tzinfo=UTC)))
def test_an_event_of_any_kind_dated_far_ahead_is_invalid_and_changes_nothing(
    document: Doc,
) -> None:
    engine, clock = _known_exchange()
    before = adequacy_report(engine, "dmm").to_document()
    outcome, error = _take(engine, clock, document)
    assert outcome is Outcome.INVALID
    assert error == (
        "ts: 2099-01-01T00:00:00Z is 2353747800 s ahead of the time its record was appended "
        "(2024-05-31T13:10:00Z); at most 300 s is accepted (RESERVE_MONITOR_MAX_FUTURE_SECONDS)"
    )
    # the time every figure is judged at, and every figure, are as before
    assert engine.clock == T0
    assert clock.now(1.0) == T0 + timedelta(seconds=1)
    assert engine.finish().evaluated == []
    assert adequacy_report(engine, "dmm").to_document() == before


def test_an_event_dated_up_to_the_tolerance_ahead_is_applied() -> None:
    engine, clock = _known_exchange()
    outcome, error = _take(engine, clock, wallet("96000", when=WALL_NOW + MAX_AHEAD))
    assert (outcome, error) == (Outcome.APPLIED, None)
    assert engine.clock == WALL_NOW + MAX_AHEAD  # within the tolerance, it is the time


def test_one_second_beyond_the_tolerance_is_invalid() -> None:
    engine, clock = _known_exchange()
    before = adequacy_report(engine, "dmm").to_document()
    beyond = WALL_NOW + MAX_AHEAD + timedelta(seconds=1)
    outcome, error = _take(engine, clock, wallet("96000", when=beyond))
    assert outcome is Outcome.INVALID
    assert error is not None and error.startswith(
        "ts: 2024-05-31T13:15:01Z is 301 s ahead of the time its record was appended"
    )
    assert engine.clock == T0
    assert adequacy_report(engine, "dmm").to_document() == before


def test_a_repeated_event_id_dated_far_ahead_is_invalid_not_a_duplicate() -> None:
    """The date is checked first: a repeat with a broken clock is dead-lettered, to be seen."""
    engine, clock = _known_exchange()
    feed(engine, trade("1", event_id="t-repeat"))
    outcome, error = _take(engine, clock, trade("1", event_id="t-repeat", when=at(days=30)))
    assert outcome is Outcome.INVALID
    assert error is not None and error.startswith("ts: ")


def test_events_long_before_the_wall_clock_are_taken_as_dated() -> None:
    """History sent to a worker years later is taken: only the future is bounded."""
    engine, clock = _known_exchange()
    years_later = datetime(2030, 1, 1, tzinfo=UTC)
    for document in _every_kind(at(minutes=1)):
        outcome, error = _take(engine, clock, document, wall_now=years_later)
        assert (outcome, error) == (Outcome.APPLIED, None), document
    assert engine.clock == at(minutes=1)


def test_a_tolerance_of_zero_refuses_anything_dated_after_the_wall_clock() -> None:
    engine, clock = _known_exchange()
    outcome, _ = _take(engine, clock, wallet("96000", when=WALL_NOW), timedelta(0))
    assert outcome is Outcome.APPLIED
    later = WALL_NOW + timedelta(milliseconds=1)
    outcome, error = _take(engine, clock, wallet("95000", when=later), timedelta(0))
    assert outcome is Outcome.INVALID
    assert error is not None and "is 1 s ahead" in error and "at most 0 s" in error


def test_ahead_of_clock_names_the_field_the_distance_and_the_setting() -> None:
    assert ahead_of_clock(WALL_NOW, WALL_NOW, MAX_AHEAD) is None
    assert ahead_of_clock(WALL_NOW - timedelta(days=3650), WALL_NOW, MAX_AHEAD) is None
    error = ahead_of_clock(WALL_NOW + timedelta(hours=1), WALL_NOW, timedelta(seconds=90.5))
    assert isinstance(error, InvalidEvent)
    assert error.field == "ts"
    assert error.message == (
        "2024-05-31T14:10:00Z is 3600 s ahead of the time its record was appended "
        "(2024-05-31T13:10:00Z); "
        "at most 90.5 s is accepted (RESERVE_MONITOR_MAX_FUTURE_SECONDS)"
    )


def test_the_tolerance_is_300_s_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESERVE_MONITOR_MAX_FUTURE_SECONDS", raising=False)
    assert Settings().max_future_seconds == 300
    monkeypatch.setenv("RESERVE_MONITOR_MAX_FUTURE_SECONDS", "30")
    assert Settings().max_future_seconds == 30
    monkeypatch.setenv("RESERVE_MONITOR_MAX_FUTURE_SECONDS", "-1")
    with pytest.raises(ValueError, match="RESERVE_MONITOR_MAX_FUTURE_SECONDS"):
        Settings()


def test_the_topic_of_each_kind_is_covered() -> None:
    """The parametrised test above goes through every input topic."""
    assert {topic_for(d) for d in _every_kind(T0)} == set(Topic)
