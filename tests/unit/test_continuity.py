"""A partition's records reach the engine in order, or the partition is read again."""

from __future__ import annotations

from monitor.worker.continuity import Continuity

P0, P1 = ("trades", 0), ("trades", 1)


def test_records_in_order_skip_nothing_and_partitions_are_apart() -> None:
    seen = Continuity()
    assert [seen.skipped(P0, n) for n in range(5)] == [None] * 5
    assert seen.skipped(P1, 40) is None  # a partition's first record sets where it is
    assert seen.skipped(P1, 41) is None


def test_a_missing_record_is_named_once_and_the_partition_goes_on() -> None:
    seen = Continuity()
    for n in range(749):
        seen.skipped(P0, n)
    assert seen.skipped(P0, 750) == 749  # 749 never came: the worker reads it apart
    assert seen.skipped(P0, 751) is None
    assert seen.skipped(P0, 755) == 752  # a jump of several
    assert seen.skipped(P0, 756) is None


def test_a_partition_read_again_from_its_committed_offset_is_in_order() -> None:
    seen = Continuity()
    for n in range(100, 200):
        seen.skipped(P0, n)
    assert seen.skipped(P0, 150) is None  # a seek back: records come again, duplicates
    seen.forget()  # a rebalance: another worker may have moved the partition on
    assert seen.skipped(P0, 500) is None
