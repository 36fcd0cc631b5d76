"""A read of partitions up to known offsets: its progress lines and its stall."""

from __future__ import annotations

import logging

import pytest

from monitor.worker.backlog import BacklogRead, Stalled


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _read(clock: Clock, stall: float = 30.0, every: float = 10.0) -> BacklogRead[str]:
    # two partitions: 1,000 offsets from 0, and 3,000 from 500 (compaction removed the first)
    return BacklogRead(
        "tasks [0, 1]: restoring", {"a": 0, "b": 500}, {"a": 1_000, "b": 3_500},
        stall=stall, every=every, clock=clock,
    )  # fmt: skip


def test_it_says_how_far_it_has_come_when_a_line_is_due(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    backlog = _read(clock)
    caplog.set_level(logging.INFO, logger="monitor.worker.backlog")
    clock.now += 4
    backlog.at({"a": 400})
    assert caplog.messages == []  # not due before 10 s
    clock.now += 6
    backlog.at({"b": 1_100})
    assert caplog.messages == [
        "tasks [0, 1]: restoring: 25% (1,000 of 4,000 offsets), 100 offsets/s, about 30 s left"
    ]
    clock.now += 5
    backlog.at({"a": 1_000, "b": 2_000})
    assert len(caplog.messages) == 1  # the next is due 10 s after the last
    clock.now += 5
    backlog.at({"b": 2_500})
    assert caplog.messages[-1] == (
        "tasks [0, 1]: restoring: 75% (3,000 of 4,000 offsets), 150 offsets/s, about 7 s left"
    )
    assert backlog.behind() == ["b"] and not backlog.done


def test_it_is_done_when_every_partition_reaches_its_end_or_passes_it() -> None:
    clock = Clock()
    backlog = _read(clock)
    backlog.at({"a": 1_000})
    assert not backlog.done and backlog.behind() == ["b"]
    backlog.at({"b": 3_501})  # past the end: a transaction's commit marker is skipped
    assert backlog.done and backlog.behind() == []
    assert "100% (4,000 of 4,000 offsets)" in backlog.line()


def test_nothing_to_read_is_done_at_once() -> None:
    backlog = BacklogRead("empty", {"a": 7}, {"a": 7}, stall=1.0, clock=Clock())
    assert backlog.done
    assert backlog.line().startswith("empty: 100% (0 of 0 offsets)")


def test_a_read_that_moves_goes_on_however_long_and_one_that_stops_is_stalled() -> None:
    clock = Clock()
    backlog = _read(clock, stall=30.0)
    for step in range(1, 40):  # 20 minutes, moving a little every 30 s less a moment
        clock.now += 29.9
        backlog.at({"a": min(step * 10, 1_000)})
    clock.now += 29.9
    backlog.at({"a": 390})  # no partition moved: not yet the stall
    clock.now += 0.1
    with pytest.raises(Stalled, match=r"nothing read for 30 s, at 390 of 4,000 offsets"):
        backlog.at({"a": 390, "b": 500})
    assert isinstance(Stalled("x"), TimeoutError)  # the worker's retries take it as one


def test_a_position_going_back_is_no_progress() -> None:
    clock = Clock()
    backlog = _read(clock, stall=5.0)
    backlog.at({"a": 600})
    clock.now += 5
    with pytest.raises(Stalled):
        backlog.at({"a": 300})  # a seek back: what was read stays read, nothing moved
