"""Co-partitioned assignment: one task per partition number, all of it to one worker.

The input topics keyed by exchange (``exchange.trades``,
``exchange.wallet-balances``, ``exchange.ledger``) are co-partitioned: an
exchange's records are on the same partition number of each. A task owns one
partition number of every one of them, so the worker that owns the task sees
all of its exchanges' records. aiokafka's own assignors spread each topic's
partitions on their own, so the worker brings this one
(``partition_assignment_strategy``), as Kafka Streams brings its
``StreamsPartitionAssignor``.

:func:`assign_tasks` is the pure decision (tasks dealt round-robin to the
members in id order, so every member computes the same); :func:`check_copartitioned`
refuses topics whose partition counts differ, with the counts in the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from monitor.core.errors import NotCopartitioned


def check_copartitioned(partitions: Mapping[str, int]) -> int:
    """The partition count every topic shares; raises NotCopartitioned when they differ."""
    counts = set(partitions.values())
    if len(counts) != 1:
        listed = ", ".join(f"{topic}: {n}" for topic, n in sorted(partitions.items()))
        raise NotCopartitioned(
            f"the input topics must have the same number of partitions, so that an "
            f"exchange's records share a partition number on each ({listed}); recreate "
            f"them with one count (RESERVE_MONITOR_PARTITIONS)"
        )
    (count,) = counts
    return count


def assign_tasks(members: Iterable[str], tasks: int) -> dict[str, list[int]]:
    """Partition numbers (tasks) dealt round-robin to the members, in member id order."""
    ordered = sorted(members)
    assigned: dict[str, list[int]] = {member: [] for member in ordered}
    for task in range(tasks):
        assigned[ordered[task % len(ordered)]].append(task)
    return assigned


class CopartitionedAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka ships no types
    """aiokafka's assignor interface around :func:`assign_tasks`."""

    name = "reserve-monitor-copartitioned"
    version = 0

    @classmethod
    def assign(
        cls,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({topic for meta in members.values() for topic in meta.subscription})
        partitions = {topic: len(cluster.partitions_for_topic(topic) or ()) for topic in topics}
        tasks = check_copartitioned(partitions) if partitions else 0
        assigned = assign_tasks(members, tasks)
        return {
            member: ConsumerProtocolMemberAssignment(
                cls.version,
                [(topic, list(assigned[member])) for topic in topics],
                b"",
            )
            for member in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass
