"""Two consumers in one group on a real broker, with the co-partitioned assignor."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from monitor.worker.assignment import CopartitionedAssignor
from tests.integration.harness import Deployment

pytestmark = pytest.mark.kafka

INPUTS = ["exchange.trades", "exchange.wallet-balances", "exchange.ledger"]
PARTITIONS = 6


async def _create(d: Deployment) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=d.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(d.topic(t), PARTITIONS, 1) for t in INPUTS])
    finally:
        await admin.close()


def _consumer(d: Deployment) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *(d.topic(t) for t in INPUTS),
        bootstrap_servers=d.bootstrap,
        group_id=d.app_id,
        partition_assignment_strategy=(CopartitionedAssignor,),
        enable_auto_commit=False,
    )


async def _settled(consumers: list[AIOKafkaConsumer]) -> list[set[tuple[str, int]]]:
    """Each consumer's assignment once the group has dealt every partition."""
    for _ in range(120):
        await asyncio.gather(*(c.getmany(timeout_ms=250) for c in consumers))
        owned = [{(tp.topic, tp.partition) for tp in c.assignment()} for c in consumers]
        if sum(len(o) for o in owned) == len(INPUTS) * PARTITIONS and all(owned):
            return owned
    raise AssertionError(f"the group did not settle: {owned}")


async def test_each_worker_owns_every_input_topic_of_its_partition_numbers(
    deployment: Deployment,
) -> None:
    d = deployment
    await _create(d)
    consumers = [_consumer(d), _consumer(d)]
    for consumer in consumers:
        await consumer.start()
    try:
        owned = await _settled(consumers)
    finally:
        for consumer in consumers:
            await consumer.stop()
    tasks = [{partition for _, partition in o} for o in owned]
    assert tasks[0].isdisjoint(tasks[1]) and tasks[0] | tasks[1] == set(range(PARTITIONS))
    for o, numbers in zip(owned, tasks, strict=True):
        # a task is a partition number of every input topic: all of an exchange's records
        assert o == {(d.topic(t), n) for t in INPUTS for n in numbers}
    assert sorted(len(numbers) for numbers in tasks) == [3, 3]
