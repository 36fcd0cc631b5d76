"""``reserve-monitor reset``: rewind an application's input offsets and delete its changelogs.

The model is Kafka's ``kafka-streams-application-reset``. A worker's state is
its changelog plus the input offsets committed with it; a reset discards both
on purpose, so the next workers of the group rebuild their state by reading
the input topics again from the chosen point. Rewinding without deleting the
changelog would apply the same records twice to state that already holds them.

Two halves:

- :func:`plan_reset` is pure: from what the broker holds (:class:`Cluster`) it
  decides each input partition's new offset and the topics to delete, or
  refuses (:class:`ResetRefused`) while the group has members.
- :func:`reset` is the thin adapter: it reads the :class:`Cluster` with
  aiokafka's admin client and a consumer, plans, and unless it is a dry run
  commits the offsets and deletes the topics.

The topics deleted are the worker's changelog and the legacy worker's internal
topics of the same app id, when present: a reset is also the way from the
legacy worker to this one. Output topics and ``market.prices`` are never
touched; ``market.prices`` is read by every worker outside the group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# aiokafka ships no type information (no py.typed, no stubs).
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from monitor.core.errors import ReserveMonitorError
from monitor.settings import Settings
from monitor.worker.changelog import changelog_topic
from monitor.worker.connection import aiokafka_security
from monitor.worker.topics import input_topics

# the internal topics of the legacy worker (on a stream framework, up to 0.1): its two
# tables' changelogs and its assignor's topic
_LEGACY_SUFFIXES = ("state-changelog", "prices-changelog", "__assignor-__leader")
_UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION: deleted by someone else meanwhile


class ResetRefused(ReserveMonitorError):
    """A reset that must not run: the group has members, or the app id is not the configured one."""


class ResetIncomplete(ReserveMonitorError):
    """Offsets rewound but changelogs not deleted: no worker may start before a second run."""


def internal_topics(app_id: str) -> tuple[str, ...]:
    """Every changelog an application of this id may have: this worker's, then legacy's."""
    return (changelog_topic(app_id), *(f"{app_id}-{suffix}" for suffix in _LEGACY_SUFFIXES))


@dataclass(frozen=True)
class Cluster:
    """What the broker holds for one reset: read by :func:`reset`, or built by a test."""

    topics: frozenset[str]  # every topic of the cluster
    partitions: Mapping[str, int]  # partition count of each input topic that exists
    committed: Mapping[TopicPartition, int]  # the group's offsets; absent: none committed
    beginnings: Mapping[TopicPartition, int]  # first offset still held of each partition
    ends: Mapping[TopicPartition, int]
    # offsets_for_times' answer at --to-datetime (None: no record at or after it); else empty
    by_time: Mapping[TopicPartition, int | None] = field(default_factory=dict)
    members: Sequence[str] = ()  # the group's active members, "client id@host"


@dataclass(frozen=True)
class Rewind:
    """One input partition's committed offset: before and after the reset."""

    partition: TopicPartition
    old: int | None  # None: the group had committed none
    new: int

    def __str__(self) -> str:
        old = "none" if self.old is None else str(self.old)
        return f"{self.partition.topic}[{self.partition.partition}]: {old} -> {self.new}"


@dataclass(frozen=True)
class ResetPlan:
    """What a reset does: the offsets it commits and the topics it deletes."""

    app_id: str
    target: str  # what the offsets are rewound to, in words
    rewinds: tuple[Rewind, ...]
    deletions: tuple[str, ...]
    absent_inputs: tuple[str, ...]  # input topics that do not exist: nothing to rewind

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        return {r.partition: r.new for r in self.rewinds}

    def report(self, *, done: bool) -> list[str]:
        """Lines for a person: what was done, or (``done=False``) what would be."""
        lines = [f"reset of application {self.app_id}, input offsets to {self.target}:"]
        lines += [f"  {r}" for r in self.rewinds]
        lines += [f"  {topic}: no such topic, nothing to rewind" for topic in self.absent_inputs]
        verb = "deleted" if done else "would delete"
        lines.append(
            f"{verb}: {', '.join(self.deletions)}" if self.deletions else "no changelog to delete"
        )
        if not done:
            lines.append("dry run: nothing changed")
        return lines


def plan_reset(
    app_id: str, inputs: Sequence[str], cluster: Cluster, to: datetime | None = None
) -> ResetPlan:
    """Each input partition's new offset and the topics to delete; refuses an active group.

    ``to`` None rewinds to the earliest offset the broker still holds. A time
    takes each partition's first record at or after it (``offsets_for_times``),
    or its end when none is: the records before it are skipped, and the state
    they made is deleted with the changelog all the same.
    """
    if cluster.members:
        raise ResetRefused(
            f"group {app_id} has {len(cluster.members)} active member(s) "
            f"({', '.join(sorted(cluster.members))}): stop every worker of {app_id} first"
        )
    rewinds = []
    for topic in inputs:
        for number in range(cluster.partitions.get(topic, 0)):
            tp = TopicPartition(topic, number)
            if to is None:
                new = cluster.beginnings[tp]
            else:
                found = cluster.by_time.get(tp)
                new = cluster.ends[tp] if found is None else found
            rewinds.append(Rewind(tp, cluster.committed.get(tp), new))
    return ResetPlan(
        app_id=app_id,
        target=(
            "the earliest offset held"
            if to is None
            else f"the first record appended at or after {to.isoformat()}"
        ),
        rewinds=tuple(rewinds),
        deletions=tuple(t for t in internal_topics(app_id) if t in cluster.topics),
        absent_inputs=tuple(t for t in inputs if t not in cluster.partitions),
    )


def check_app_id(given: str, settings: Settings) -> None:
    """The id typed must be the configured one: an environment default resets no group."""
    if given != settings.app_id:
        raise ResetRefused(
            f"--application-id {given} is not RESERVE_MONITOR_APP_ID ({settings.app_id}); "
            "set RESERVE_MONITOR_APP_ID to the application to reset"
        )


# -- the Kafka adapter ----------------------------------------------------------------


async def reset(
    settings: Settings,
    app_id: str,
    *,
    to: datetime | None = None,
    dry_run: bool = False,
    timeout: float = 60.0,
) -> ResetPlan:
    """Plan the reset of ``app_id`` on the broker and, unless ``dry_run``, carry it out.

    Offsets are committed before any topic is deleted: the broker refuses a
    commit from outside the group while it has members, so a worker that joins
    after the check stops the reset before it deletes anything.
    """
    check_app_id(app_id, settings)
    client: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        **aiokafka_security(settings),
    }
    inputs = tuple(input_topics(settings))
    admin = AIOKafkaAdminClient(**client)
    consumer = AIOKafkaConsumer(group_id=app_id, enable_auto_commit=False, **client)
    await admin.start()
    try:
        await consumer.start()
        try:
            cluster = await _read_cluster(admin, consumer, app_id, inputs, to)
            plan = plan_reset(app_id, inputs, cluster, to)
            if dry_run:
                return plan
            if plan.rewinds:
                await _commit(consumer, app_id, plan.offsets)
        finally:
            await consumer.stop()
        if plan.deletions:
            try:
                await _delete_topics(admin, plan.deletions, timeout)
            except (KafkaError, TimeoutError) as error:
                raise ResetIncomplete(
                    f"the offsets of group {app_id} were rewound but {', '.join(plan.deletions)} "
                    f"not deleted ({error!r}); run reset again before starting any worker"
                ) from error
        return plan
    finally:
        await admin.close()


async def _commit(consumer: Any, app_id: str, offsets: Mapping[TopicPartition, int]) -> None:
    # assigned, not subscribed: the consumer commits as no member, which the broker
    # accepts only while the group has none
    consumer.assign(list(offsets))
    try:
        await consumer.commit({tp: OffsetAndMetadata(n, "") for tp, n in offsets.items()})
    except KafkaError as error:
        raise ResetRefused(
            f"the offsets of group {app_id} were not committed ({error!r}); did a worker "
            "join meanwhile? Nothing was deleted"
        ) from error


async def _read_cluster(
    admin: Any, consumer: Any, app_id: str, inputs: Sequence[str], to: datetime | None
) -> Cluster:
    described = await admin.describe_consumer_groups([app_id])
    members = [
        f"{member['client_id']}@{member['client_host']}"
        for response in described
        for group in _groups(response)
        for member in group["members"]
    ]
    topics = frozenset(await admin.list_topics())
    present = [topic for topic in inputs if topic in topics]
    partitions: dict[str, int] = {}
    if present:
        for d in await admin.describe_topics(present):
            partitions[d["topic"]] = len(d["partitions"])
    tps = [TopicPartition(t, n) for t, count in partitions.items() for n in range(count)]
    if not tps:
        return Cluster(topics, partitions, {}, {}, {}, {}, members)
    held = await admin.list_consumer_group_offsets(app_id, partitions=tps)
    committed = {tp: meta.offset for tp, meta in held.items() if meta.offset >= 0}
    beginnings = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    by_time: dict[TopicPartition, int | None] = {}
    if to is not None:
        millis = int(to.timestamp() * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, millis))
        by_time = {tp: None if at is None else at.offset for tp, at in found.items()}
    return Cluster(topics, partitions, committed, beginnings, ends, by_time, members)


def _groups(response: Any) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = response.to_object()["groups"]
    for group in groups:
        if group["error_code"]:
            raise for_code(group["error_code"])(f"could not describe group {group['group']}")
    return groups


async def _delete_topics(admin: Any, topics: Collection[str], timeout: float) -> None:
    """Delete ``topics`` and wait until the cluster no longer lists them."""
    response = await admin.delete_topics(list(topics))
    for topic, code in response.topic_error_codes:
        if code and code != _UNKNOWN_TOPIC:
            raise for_code(code)(f"could not delete {topic}")
    deadline = time.monotonic() + timeout
    while set(topics) & set(await admin.list_topics()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{', '.join(topics)} still listed {timeout:g} s after deletion")
        await asyncio.sleep(0.2)
