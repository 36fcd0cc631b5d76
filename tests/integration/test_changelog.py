"""A task's state restored from its changelog partition on the real broker."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from aiokafka import AIOKafkaProducer

from monitor.worker.changelog import PRICES_POSITION, changelog_topic, restore
from tests.integration.harness import Deployment, create_topic


async def test_a_restore_reads_each_task_s_changelog_to_its_end_saying_how_far_it_has_come(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    topic = changelog_topic(deployment.prefix + "app")
    await create_topic(deployment.bootstrap, topic, 2)
    # task 0: 10,000 keys written three times (the newest counts), every tenth then deleted,
    # and its price position; task 1: a few keys
    written: list[tuple[int, str, dict[str, object] | None]] = []
    for round_ in range(3):
        written += [(0, f"wallet/{n}", {"balance": str(n * round_)}) for n in range(10_000)]
    written += [(0, f"wallet/{n}", None) for n in range(0, 10_000, 10)]
    written += [(0, PRICES_POSITION, {"0": 1234}), (1, "clock", {"ts": "2026-01-01T00:00:00Z"})]
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, linger_ms=20)
    await producer.start()
    try:
        sent = [
            await producer.send(
                topic,
                None if document is None else json.dumps(document).encode(),
                key=key.encode(),
                partition=task,
            )
            for task, key, document in written
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    caplog.set_level(logging.INFO, logger="monitor.worker.backlog")
    restored = await restore({"bootstrap_servers": deployment.bootstrap}, topic, [0, 1], every=0.0)

    assert restored[0].entries == {
        f"wallet/{n}": {"balance": str(n * 2)} for n in range(10_000) if n % 10
    }
    assert restored[0].prices_position == {0: 1234}
    assert restored[0].records == 31_001
    assert restored[1].entries == {"clock": {"ts": "2026-01-01T00:00:00Z"}}
    # a line after each fetch but the last (every=0): offsets read rise, of the whole backlog
    lines = [m for m in caplog.messages if m.startswith("tasks [0, 1]: restoring changelog")]
    assert len(lines) >= 2, caplog.messages
    read = [
        int(re.search(r"\(([\d,]+) of 31,002 offsets\)", line)[1].replace(",", ""))
        for line in lines
    ]  # type: ignore[index]
    assert read == sorted(read) and read[0] > 0 and read[-1] < 31_002
