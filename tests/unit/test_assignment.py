"""Co-partitioned assignment (monitor.worker.assignment), the pure decision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.errors import NotCopartitioned
from monitor.worker.assignment import assign_tasks, check_copartitioned


def test_topics_with_one_partition_count_share_it() -> None:
    counts = {"exchange.trades": 8, "exchange.ledger": 8, "exchange.wallet-balances": 8}
    assert check_copartitioned(counts) == 8


def test_topics_with_different_counts_are_refused_with_each_count() -> None:
    counts = {"exchange.trades": 8, "exchange.ledger": 4, "exchange.wallet-balances": 8}
    with pytest.raises(NotCopartitioned) as refused:
        check_copartitioned(counts)
    assert "exchange.ledger: 4" in str(refused.value)
    assert "exchange.trades: 8" in str(refused.value)
    assert "RESERVE_MONITOR_PARTITIONS" in str(refused.value)


@given(
    members=st.sets(st.text(min_size=1, max_size=8), min_size=1, max_size=6),
    tasks=st.integers(min_value=0, max_value=40),
)
def test_every_task_goes_to_one_member_evenly_whatever_order_members_come_in(
    members: set[str], tasks: int
) -> None:
    assigned = assign_tasks(members, tasks)
    dealt = sorted(task for owned in assigned.values() for task in owned)
    assert dealt == list(range(tasks))  # each task once
    sizes = [len(owned) for owned in assigned.values()]
    assert max(sizes) - min(sizes) <= 1
    assert assign_tasks(sorted(members, reverse=True), tasks) == assigned  # every member agrees
