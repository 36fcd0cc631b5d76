"""RollingSum: the trailing-volume window in event time, against brute force."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.state.windows import RollingSum
from tests.unit.builders import T0

HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)


def three_hours() -> RollingSum:
    return RollingSum(timedelta(hours=3), HOUR)


@pytest.mark.parametrize(
    ("window", "bucket"),
    [
        (timedelta(hours=3), timedelta(0)),
        (timedelta(hours=3), -HOUR),
        (timedelta(minutes=30), HOUR),
        (timedelta(minutes=90), HOUR),
    ],
)
def test_rejects_a_window_that_is_not_whole_buckets(window: timedelta, bucket: timedelta) -> None:
    with pytest.raises(ValueError, match="whole number of buckets"):
        RollingSum(window, bucket)


def test_bucket_boundaries_are_the_start_of_each_bucket() -> None:
    window = three_hours()
    b = window.bucket_of(T0)  # T0 is on the hour
    assert window.bucket_of(T0 + HOUR - TICK) == b
    assert window.bucket_of(T0 + HOUR) == b + 1
    assert window.bucket_of(T0 - TICK) == b - 1


def test_an_amount_counts_until_its_bucket_leaves_the_window() -> None:
    window = three_hours()
    window.add(T0 + timedelta(minutes=59), Decimal("7.5"))
    # the window at now holds buckets (b(now) - 3, b(now)]
    assert window.total(T0 + 3 * HOUR - TICK) == Decimal("7.5")  # bucket just inside
    assert window.total(T0 + 3 * HOUR) == 0  # bucket just outside


def test_amounts_in_the_same_bucket_add_up_exactly() -> None:
    window = three_hours()
    for _ in range(10):
        window.add(T0, Decimal("0.1"))
    assert window.total(T0) == Decimal("1.0")
    assert window.amount(window.bucket_of(T0)) == Decimal("1.0")


def test_total_never_moves_time_backwards() -> None:
    window = three_hours()
    window.add(T0, Decimal(1))
    window.add(T0 + 5 * HOUR, Decimal(2))
    assert window.total(T0) == 2  # the window still ends at the newest time seen


def test_an_add_too_old_for_the_newest_time_seen_is_refused() -> None:
    window = three_hours()
    newest = window.add(T0 + 3 * HOUR, Decimal(1))
    assert newest == window.bucket_of(T0 + 3 * HOUR)
    assert window.add(T0 + HOUR - TICK, Decimal(5)) is None  # bucket b(T0): just outside
    assert window.add(T0 + HOUR, Decimal(5)) == window.bucket_of(T0 + HOUR)  # just inside
    assert window.total(T0 + 3 * HOUR) == 6


def test_a_read_moves_the_window_so_later_old_adds_are_refused() -> None:
    window = three_hours()
    window.total(T0 + 10 * HOUR)
    assert window.add(T0, Decimal(1)) is None
    assert window.total(T0 + 10 * HOUR) == 0


def test_an_out_of_order_add_inside_the_window_counts() -> None:
    window = three_hours()
    window.add(T0 + 2 * HOUR, Decimal(1))
    assert window.add(T0, Decimal(2)) == window.bucket_of(T0)
    assert window.total(T0 + 2 * HOUR) == 3


def test_evicted_reports_each_dropped_bucket_once() -> None:
    window = three_hours()
    first = window.add(T0, Decimal(1))
    second = window.add(T0 + HOUR, Decimal(1))
    assert window.evicted() == []
    window.total(T0 + 3 * HOUR)
    assert window.evicted() == [first]
    assert window.evicted() == []
    window.total(T0 + 10 * HOUR)
    assert window.evicted() == [second]
    assert window.buckets() == {}


def test_restore_puts_back_buckets_in_any_order() -> None:
    original = three_hours()
    for hours, amount in [(0, "1"), (1, "2"), (2, "3"), (4, "4"), (5, "5")]:
        original.add(T0 + hours * HOUR, Decimal(amount))
    journal = original.buckets()
    restored = three_hours()
    for index in sorted(journal, reverse=True):
        restored.restore(index, journal[index])
    assert restored.buckets() == journal
    assert restored.total(T0 + 5 * HOUR) == original.total(T0 + 5 * HOUR) == 9  # 4 + 5


def test_restore_replaces_a_bucket_rather_than_adding_to_it() -> None:
    window = three_hours()
    index = window.add(T0, Decimal(1))
    assert index is not None
    window.restore(index, Decimal(4))
    assert window.total(T0) == 4


def test_restore_ignores_a_bucket_already_outside_the_window() -> None:
    window = three_hours()
    window.add(T0 + 10 * HOUR, Decimal(1))
    window.restore(window.bucket_of(T0), Decimal(100))
    assert window.total(T0 + 10 * HOUR) == 1


# -- property: the running total equals a brute-force sum ---------------------------

BUCKET = timedelta(minutes=1)
SIZE = 5  # buckets in the window
MICROS = 1_000_000

offsets = st.one_of(
    st.integers(min_value=0, max_value=40 * 60 * MICROS),
    # exactly on, or a microsecond either side of, a bucket boundary
    st.builds(
        lambda k, d: max(0, k * 60 * MICROS + d),
        st.integers(min_value=0, max_value=40),
        st.sampled_from([-1, 0, 1]),
    ),
)
amounts = st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), offsets, amounts),
        st.tuples(st.just("again")),  # the previous add once more: a duplicate
        st.tuples(st.just("read"), st.integers(min_value=0, max_value=5 * 60 * MICROS)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(operations=operations)
def test_running_total_equals_brute_force(operations: list[tuple]) -> None:
    window = RollingSum(SIZE * BUCKET, BUCKET)
    accepted: list[tuple[int, Decimal]] = []  # (bucket, amount) of every add taken
    evicted: list[int] = []
    newest: int | None = None  # the bucket of the newest time seen, by add or by read
    read_at = 0
    last_add: tuple[int, Decimal] | None = None
    for operation in operations:
        if operation[0] in ("add", "again"):
            if operation[0] == "add":
                last_add = (operation[1], operation[2])
            if last_add is None:
                continue
            offset, amount = last_add
            moment = T0 + timedelta(microseconds=offset)
            index = window.bucket_of(moment)
            too_old = newest is not None and index <= newest - SIZE
            result = window.add(moment, amount)
            if too_old:
                assert result is None
            else:
                assert result == index
                accepted.append((index, amount))
                newest = index if newest is None else max(newest, index)
        else:
            read_at += operation[1]
            moment = T0 + timedelta(microseconds=read_at)
            index = window.bucket_of(moment)
            newest = index if newest is None else max(newest, index)
            assert window.total(moment) == _brute_total(accepted, newest)
        evicted.extend(window.evicted())
    if newest is None:
        assert window.buckets() == {}
        return
    in_window = _brute_buckets(accepted, newest)
    assert window.buckets() == in_window
    # every bucket that held an amount and left the window was reported, once
    assert len(evicted) == len(set(evicted))
    assert set(evicted) == {b for b, _ in accepted} - set(in_window)


def _brute_buckets(accepted: list[tuple[int, Decimal]], newest: int) -> dict[int, Decimal]:
    """Per-bucket sums of the accepted adds inside (newest - SIZE, newest]."""
    sums: dict[int, Decimal] = {}
    with localcontext(prec=200):
        for index, amount in accepted:
            if newest - SIZE < index <= newest:
                sums[index] = sums.get(index, Decimal(0)) + amount
    return sums


def _brute_total(accepted: list[tuple[int, Decimal]], newest: int) -> Decimal:
    with localcontext(prec=200):
        return sum(_brute_buckets(accepted, newest).values(), Decimal(0))
