"""A task's partitions merged in append order (monitor.worker.alignment), pure: no broker."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.worker.alignment import PartitionGroup

PARTITIONS = ["trades-3", "wallets-3", "ledger-3"]


@dataclass(frozen=True)
class Record:
    timestamp: int  # ms, as the broker appended it
    offset: int


def _log(timestamps: list[int]) -> list[Record]:
    """A partition's records: offsets in order, append times never going back."""
    return [Record(ts, offset) for offset, ts in enumerate(sorted(timestamps))]


def _append_order(logs: dict[str, list[Record]]) -> list[tuple[str, Record]]:
    rank = {p: n for n, p in enumerate(PARTITIONS)}
    everything = [(p, r) for p, records in logs.items() for r in records]
    return sorted(everything, key=lambda pr: (pr[1].timestamp, rank[pr[0]], pr[1].offset))


logs = st.fixed_dictionaries(
    {p: st.lists(st.integers(min_value=0, max_value=50), max_size=15) for p in PARTITIONS}
).map(lambda drawn: {p: _log(ts) for p, ts in drawn.items()})


@settings(max_examples=300, deadline=None)
@given(logs=logs, data=st.data())
def test_however_fetches_arrive_the_records_come_out_in_append_order(
    logs: dict[str, list[Record]], data: st.DataObject
) -> None:
    """Committed records on the broker (a backlog): however late each fetch comes, far
    past max_idle as for a worker starved of CPU, nothing is taken out of append order."""
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    fetched = dict.fromkeys(PARTITIONS, 0)
    out: list[tuple[str, Record]] = []
    now = 0.0
    for partition in PARTITIONS:
        group.lagging(partition, bool(logs[partition]), None, True)
    while len(out) < sum(len(records) for records in logs.values()):
        now += data.draw(st.sampled_from([0.0, 0.01, 0.5, 30.0]))
        # the consumer fetches a chunk of some partition, or the loop takes what it may
        behind = [p for p in PARTITIONS if fetched[p] < len(logs[p])]
        if behind and data.draw(st.booleans()):
            partition = data.draw(st.sampled_from(behind))
            size = data.draw(st.integers(min_value=1, max_value=4))
            chunk = logs[partition][fetched[partition] : fetched[partition] + size]
            fetched[partition] += len(chunk)
            group.add(partition, chunk)
            group.lagging(partition, fetched[partition] < len(logs[partition]), None, True)
            continue
        taken = group.next(now)
        if taken is None:
            assert behind, "the group waits only for a partition that has records to fetch"
            continue
        out.append(taken)
    assert out == _append_order(logs)
    assert group.enforced == 0 and group.out_of_order == 0


def test_an_empty_partition_with_committed_records_to_fetch_is_waited_for_however_long() -> None:
    """Kafka Streams since KIP-695: records known to be on the broker, committed, come
    with the consumer's next fetches, however slow; max_idle does not cut the wait."""
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    group.add("trades-3", [Record(1000, 0), Record(1005, 1)])
    group.lagging("wallets-3", True, None, True)  # its next fetch may hold a record of 999
    assert group.next(now=10.0) is None
    assert group.next(now=10.125) is None  # past max_idle
    assert group.next(now=3600.0) is None
    assert group.waited(now=3600.0) == pytest.approx(3590.0)  # the loop's cue to look for it
    assert group.awaited() == ["wallets-3"]  # what the worker's warning names
    group.add("wallets-3", [Record(999, 0)])
    group.lagging("wallets-3", False)
    assert [group.next(now=3600.0) for _ in range(3)] == [
        ("wallets-3", Record(999, 0)),
        ("trades-3", Record(1000, 0)),
        ("trades-3", Record(1005, 1)),
    ]
    assert group.enforced == 0 and group.out_of_order == 0


def test_a_partition_whose_lag_is_not_fetchable_yet_is_waited_for_until_max_idle() -> None:
    """Records of a transaction still open are on the broker but no fetch brings them
    before it commits: they are waited for up to max_idle, then the group goes on."""
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    group.add("trades-3", [Record(1000, 0), Record(1005, 1)])
    group.lagging("wallets-3", True)  # its next fetch may hold a record of 999
    assert group.awaited() == []  # not waited for however long
    assert group.next(now=10.0) is None
    assert group.next(now=10.05) is None
    assert group.next(now=10.125) == ("trades-3", Record(1000, 0))  # waited long enough
    assert group.next(now=10.125) == ("trades-3", Record(1005, 1))
    assert group.enforced == 2
    # the lagging partition's fetch arrives: the wait is over, order is kept again
    group.add("trades-3", [Record(1010, 2)])
    group.add("wallets-3", [Record(1008, 0)])
    group.lagging("wallets-3", False)
    assert group.next(now=10.25) == ("wallets-3", Record(1008, 0))
    assert group.next(now=10.25) == ("trades-3", Record(1010, 2))
    assert group.enforced == 2
    assert group.out_of_order == 0  # the wait passed, and luckily nothing came before


def test_a_record_taken_after_one_appended_later_is_counted_out_of_order() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    group.add("trades-3", [Record(1000, 0), Record(1005, 1)])
    group.lagging("wallets-3", True)
    assert group.next(now=10.0) is None
    assert group.next(now=10.2) == ("trades-3", Record(1000, 0))  # waited out
    group.add("wallets-3", [Record(999, 0), Record(1003, 1)])  # came too late
    group.lagging("wallets-3", False)
    taken = [group.next(now=10.3) for _ in range(3)]
    assert taken == [
        ("wallets-3", Record(999, 0)),
        ("wallets-3", Record(1003, 1)),
        ("trades-3", Record(1005, 1)),
    ]
    assert group.out_of_order == 1  # 999 after 1000; 1003 is after every record before it


def test_the_group_says_how_long_it_has_waited_for_an_empty_partition() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    assert group.waited(now=10.0) == 0.0  # nothing asked for yet
    group.add("trades-3", [Record(1000, 0)])
    group.lagging("wallets-3", True)
    assert group.next(now=10.0) is None
    assert group.waited(now=10.04) == pytest.approx(0.04)  # the loop's cue to look for it
    group.add("wallets-3", [Record(999, 0)])  # found where the consumer held it
    group.lagging("wallets-3", False)
    assert group.next(now=10.05) == ("wallets-3", Record(999, 0))
    assert group.waited(now=10.06) == 0.0  # the wait is over
    assert group.enforced == 0


def test_an_empty_partition_that_is_caught_up_holds_nothing_back() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    group.add("ledger-3", [Record(7, 0)])
    group.lagging("trades-3", False)
    assert group.next(now=0.0) == ("ledger-3", Record(7, 0))
    assert group.next(now=0.0) is None
    assert group.buffered == 0


def test_equal_timestamps_go_in_partition_order_then_offset() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.0)
    group.add("ledger-3", [Record(5, 0), Record(5, 1)])
    group.add("trades-3", [Record(5, 9)])
    taken = [group.next(now=0.0) for _ in range(3)]
    assert taken == [
        ("trades-3", Record(5, 9)),
        ("ledger-3", Record(5, 0)),
        ("ledger-3", Record(5, 1)),
    ]


def test_a_negative_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="max_idle"):
        PartitionGroup(PARTITIONS, max_idle=-1)


def test_a_cleared_partition_is_read_again_from_its_commit_and_nothing_is_taken_twice() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.0)
    group.add("trades-3", _log([1, 4, 6]))
    group.add("wallets-3", _log([2, 5]))
    assert group.next(0.0) == ("trades-3", Record(1, 0))
    # a rebalance: what trades-3 buffered is dropped; the consumer fetches it again
    group.clear("trades-3")
    assert group.buffered_in("trades-3") == 0
    assert group.next(0.0) == ("wallets-3", Record(2, 0))
    group.add("trades-3", _log([1, 4, 6])[1:])  # from its committed offset, 1
    taken = [group.next(0.0) for _ in range(4)]
    assert taken == [
        ("trades-3", Record(4, 1)),
        ("wallets-3", Record(5, 1)),
        ("trades-3", Record(6, 2)),
        None,
    ]


def test_a_group_is_caught_up_only_with_nothing_buffered_and_nothing_left_to_read() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    assert group.caught_up
    group.add("ledger-3", _log([3]))
    assert not group.caught_up  # a record is buffered
    assert group.next(0.0) == ("ledger-3", Record(3, 0))
    group.lagging("wallets-3", True)
    assert not group.caught_up  # the broker holds more of wallets-3
    group.lagging("wallets-3", False)
    assert group.caught_up
    assert group.read_up_to() is None  # no partition has said how far it is read
    for partition, read_to in zip(PARTITIONS, (700, 650, 900), strict=True):
        group.lagging(partition, False, read_to=read_to)
    assert group.read_up_to() == 650  # append time has surely reached the oldest of them


def test_an_empty_partition_read_up_to_before_a_record_holds_it_back_until_read_past_it() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    group.add("wallets-3", [Record(timestamp=500, offset=0)])
    # trades-3 is caught up as of append time 480: a trade appended at 490 may be unread
    group.lagging("trades-3", False, read_to=480)
    group.lagging("ledger-3", False, read_to=900)
    assert group.next(0.0) is None
    group.lagging("trades-3", False, read_to=501)  # a later fetch answer: nothing before 501
    assert group.next(0.01) == ("wallets-3", Record(500, 0))


def test_a_partition_that_never_answers_holds_the_group_back_for_max_idle_only() -> None:
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=0.1)
    group.add("wallets-3", [Record(timestamp=500, offset=0)])
    group.lagging("trades-3", False, read_to=480)
    assert group.next(1.0) is None
    assert group.next(1.05) is None
    assert group.next(1.1) == ("wallets-3", Record(500, 0))
    assert group.enforced == 1


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_group_holds_back_exactly_what_an_empty_partition_may_still_precede(
    data: st.DataObject,
) -> None:
    """Against the rule spelled out over every partition at every step: a record waits
    while an empty partition lags, or is read only up to an append time at or before it."""
    group: PartitionGroup[str, Record] = PartitionGroup(PARTITIONS, max_idle=10.0)
    buffered: dict[str, list[Record]] = {p: [] for p in PARTITIONS}
    state = {p: (False, None) for p in PARTITIONS}  # (lagging, read_to)
    offsets = dict.fromkeys(PARTITIONS, 0)
    rank = {p: n for n, p in enumerate(PARTITIONS)}
    for _ in range(data.draw(st.integers(min_value=1, max_value=40))):
        action = data.draw(st.sampled_from(["add", "lagging", "next", "next"]))
        partition = data.draw(st.sampled_from(PARTITIONS))
        if action == "add":
            last = buffered[partition][-1].timestamp if buffered[partition] else 0
            stamps = data.draw(st.lists(st.integers(min_value=0, max_value=20), max_size=3))
            chunk = []
            for step in stamps:
                last += step
                chunk.append(Record(last, offsets[partition]))
                offsets[partition] += 1
            group.add(partition, chunk)
            buffered[partition].extend(chunk)
        elif action == "lagging":
            read_to = data.draw(st.none() | st.integers(min_value=0, max_value=200))
            state[partition] = (data.draw(st.booleans()), read_to)
            group.lagging(partition, *state[partition])
        else:
            heads = [(b[0].timestamp, rank[p], b[0].offset, p) for p, b in buffered.items() if b]
            head = min(heads) if heads else None
            held = head is not None and any(
                not buffered[p] and (lag or (read_to is not None and head[0] >= read_to))
                for p, (lag, read_to) in state.items()
            )
            taken = group.next(now=0.0)
            if head is None or held:
                assert taken is None
            else:
                assert taken == (head[3], buffered[head[3]].pop(0))
