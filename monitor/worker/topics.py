"""Creates the contract's topics before a worker starts, so readers can subscribe at once.

Input and output topics get the configured partition count, and so does each
task's changelog (``<app id>-journal-changelog``, compacted): partition ``n``
of it is task ``n``'s state. ``reserve.adequacy`` is compacted,
``reserve.deadletter`` takes records of up to ``DEADLETTER_MAX_BYTES``, and
``market.prices`` keeps its records by time, at least as long as the price
history the worker reads back at start (:mod:`.prices`), never compacted. The input
topics stamp each record with the time the broker appended it
(``LogAppendTime``): the order and the quiet gaps the monitor judges moments by
(CONTRACT section 8) are the broker's, not each producer's clock.
Existing topics are left as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from monitor.core.events import Topic
from monitor.settings import Settings
from monitor.worker.assignment import check_copartitioned
from monitor.worker.changelog import changelog_topic
from monitor.worker.connection import aiokafka_security
from monitor.worker.deadletter import DEADLETTER_MAX_BYTES
from monitor.worker.reading import probe_consumer, start_probe

log = logging.getLogger(__name__)

ALERTS = "reserve.alerts"
BREACHES = "reserve.breaches"
ADEQUACY = "reserve.adequacy"
DEADLETTER = "reserve.deadletter"
OUTPUT_TOPICS = (ALERTS, BREACHES, ADEQUACY, DEADLETTER)
# the input topics keyed by exchange, co-partitioned: one task per partition number
INPUTS = (Topic.TRADES, Topic.WALLET_BALANCES, Topic.LEDGER)
# market.prices keeps a day at least: more than the default price history (6 h)
_PRICES_RETENTION_MS = 7 * 24 * 3600 * 1000
# how long a worker waits at start for a broker just started to name its group's coordinator
COORDINATOR_WAIT_SECONDS = 30.0


def input_topics(settings: Settings) -> list[str]:
    """The input topics keyed by exchange, which the group consumes, under the prefix."""
    return [settings.topic(topic.value) for topic in INPUTS]


def contract_topics(settings: Settings) -> list[NewTopic]:
    topics = []
    inputs = {t.value for t in Topic}
    for name in [t.value for t in Topic] + list(OUTPUT_TOPICS):
        configs = {"cleanup.policy": "compact"} if name == ADEQUACY else {}
        if name in inputs:
            configs = {"message.timestamp.type": "LogAppendTime"}
        if name == Topic.PRICES.value:
            configs |= {"cleanup.policy": "delete", "retention.ms": str(_PRICES_RETENTION_MS)}
        if name == DEADLETTER:  # a rejected message's bytes, in base64, with the reason
            configs = {"max.message.bytes": str(DEADLETTER_MAX_BYTES)}
        topics.append(NewTopic(settings.topic(name), settings.partitions, 1, topic_configs=configs))
    return topics


def internal_topics(settings: Settings) -> list[NewTopic]:
    """The application's own topics: its tasks' changelog, compacted."""
    changelog = changelog_topic(settings.app_id)
    # compaction never touches the active segment: a short one lets the key written on
    # every commit (the task's price position) be compacted within minutes, so a restore
    # reads about as many records as the state has keys
    compacted = {
        "cleanup.policy": "compact",
        "segment.ms": "600000",
        "min.cleanable.dirty.ratio": "0.1",
    }
    return [NewTopic(changelog, settings.partitions, 1, topic_configs=compacted)]


async def ensure_topics(settings: Settings) -> int:
    """Create every contract topic that does not exist yet, and check the co-partitioning.

    Raises NotCopartitioned, naming each topic's partition count, when the input
    topics keyed by exchange and the changelog differ. Returns the partition count
    of ``market.prices``, which every worker reads whole.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_security(settings)
    )
    try:
        await admin.start()  # one that failed to start is closed too, at every try of the wait
        existing = set(await admin.list_topics())
        wanted = contract_topics(settings) + internal_topics(settings)
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(missing)
            log.info("created topics: %s", ", ".join(t.name for t in missing))
            await _served(settings, missing)
        keyed = [*input_topics(settings), changelog_topic(settings.app_id)]
        prices = settings.topic(Topic.PRICES.value)
        for _ in range(50):  # a topic just created may not have its partitions in metadata yet
            described = await admin.describe_topics([*keyed, prices])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            if len(counts) == len(keyed) + 1 and all(counts.values()):
                break
            await asyncio.sleep(0.2)
        price_partitions = counts.pop(prices, 0)
        check_copartitioned(counts)
        await _coordinator_known(admin, settings.app_id)
        return price_partitions
    finally:
        await admin.close()


async def _coordinator_known(
    admin: AIOKafkaAdminClient, group: str, seconds: float = COORDINATOR_WAIT_SECONDS
) -> None:
    """Wait until the broker names the coordinator of the worker's group.

    A broker that has just started makes its offsets topic when a group first asks for
    its coordinator, and answers "coordinator not available" until then; the group's
    consumer logs that answer as an error, an alarming first line for a healthy
    deployment. The consumer retries on its own: past ``seconds``, or on an answer
    that is not worth waiting for (no right to the group, say), it is left to.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            await admin.find_coordinator(group)
            return
        except KafkaError as error:
            if not error.retriable or time.monotonic() > deadline:
                log.info("the coordinator of group %s is not known yet: %r", group, error)
                return
        await asyncio.sleep(0.1)


async def _served(settings: Settings, topics: list[NewTopic]) -> None:
    """Wait until the broker serves offsets for every partition of ``topics``, just created.

    The metadata names a leader before the leader serves its partition, and the first
    clients to ask (the price reader's ListOffsets) would each log a
    NotLeaderForPartition error, an alarming first line for a healthy deployment.
    aiokafka retries until the partitions are served; the errors of this wait, expected,
    are not logged.
    """
    partitions = [TopicPartition(t.name, p) for t in topics for p in range(t.num_partitions)]
    consumer = probe_consumer(
        {"bootstrap_servers": settings.kafka_bootstrap_servers, **aiokafka_security(settings)}
    )
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    level = fetcher.level
    await start_probe(consumer)
    fetcher.setLevel(logging.CRITICAL)
    try:
        await consumer.end_offsets(partitions)
    except KafkaError as error:  # the clients retry on their own: only slower to start
        log.warning("the new topics are not served yet: %s", error)
    finally:
        fetcher.setLevel(level)
        await consumer.stop()
