"""Creates the contract's topics before a worker starts, so readers can subscribe at once.

Input and output topics get the configured partition count (inputs must be
co-partitioned with the state changelog); ``reserve.adequacy`` is compacted, and
``reserve.deadletter`` takes records of up to ``DEADLETTER_MAX_BYTES``. The input
topics stamp each record with the time the broker appended it
(``LogAppendTime``): the order and the quiet gaps the monitor judges moments by
(CONTRACT section 8) are the broker's, not each producer's clock.
Existing topics are left as they are.
"""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor.core.events import Topic
from monitor.settings import Settings
from monitor.worker.app import ADEQUACY, DEADLETTER, OUTPUT_TOPICS
from monitor.worker.connection import aiokafka_security
from monitor.worker.deadletter import DEADLETTER_MAX_BYTES

log = logging.getLogger(__name__)


def contract_topics(settings: Settings) -> list[NewTopic]:
    topics = []
    inputs = {t.value for t in Topic}
    for name in [t.value for t in Topic] + list(OUTPUT_TOPICS):
        configs = {"cleanup.policy": "compact"} if name == ADEQUACY else {}
        if name in inputs:
            configs = {"message.timestamp.type": "LogAppendTime"}
        if name == DEADLETTER:  # a rejected message's bytes, in base64, with the reason
            configs = {"max.message.bytes": str(DEADLETTER_MAX_BYTES)}
        topics.append(NewTopic(settings.topic(name), settings.partitions, 1, topic_configs=configs))
    return topics


async def ensure_topics(settings: Settings) -> None:
    """Create every contract topic that does not exist yet."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_security(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in contract_topics(settings) if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(missing)
            log.info("created topics: %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()
