"""How far a partition is surely read: the broker's end offsets, and when they were asked."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition

from monitor.worker.reading import SKEW_MS, ReadProbe

TP = TopicPartition("exchange.trades", 0)


class Broker:
    """Answers a request for end offsets after ``delay`` seconds, as a slow broker would."""

    def __init__(self, ends: dict[TopicPartition, int], delay: float = 0.0) -> None:
        self.ends, self.delay, self.asked = ends, delay, 0

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        await asyncio.sleep(self.delay)
        return {tp: self.ends[tp] for tp in partitions}


async def test_a_partition_is_read_up_to_when_its_end_was_asked_not_when_the_answer_came() -> None:
    broker = Broker({TP: 10}, delay=0.2)  # an answer that takes long: no later time is told
    probe = ReadProbe(broker, lambda: [TP])
    assert probe.read_to(TP, 10) is None  # nothing asked yet: nothing is known
    before = time.time()
    probe.ask()
    probe.ask()  # one request in flight at a time
    await asyncio.sleep(0.3)
    assert broker.asked == 1
    read_to = probe.read_to(TP, 10)
    assert read_to is not None
    assert int(before * 1000) - SKEW_MS <= read_to <= int(before * 1000) + 50 - SKEW_MS
    assert probe.read_to(TP, 9) is None  # a record below the end is still unread
    await probe.close()


async def test_a_new_answer_moves_the_time_on_and_counts_the_records_appended_since() -> None:
    broker = Broker({TP: 3})
    probe = ReadProbe(broker, lambda: [TP])
    probe.ask()
    await asyncio.sleep(0.01)
    first = probe.read_to(TP, 3)
    await asyncio.sleep(0.05)
    broker.ends[TP] = 5  # two more records appended
    probe.ask()
    await asyncio.sleep(0.01)
    assert probe.read_to(TP, 3) is None  # read to 3 of 5 now
    second = probe.read_to(TP, 5)
    assert first is not None and second is not None and second >= first + 40
    await probe.close()
