"""How far a partition is surely read: the broker's end offsets, and when they were asked."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from monitor.worker.reading import SKEW_MS, ReadProbe

TP = TopicPartition("exchange.trades", 0)


class Clock:
    """Wall time that moves only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Broker:
    """Answers a request for end offsets when released, the clock moved on meanwhile, as a
    slow broker, or a worker starved of CPU, would."""

    def __init__(self, ends: dict[TopicPartition, int], clock: Clock) -> None:
        self.ends, self.clock, self.asked = ends, clock, 0
        self.release = asyncio.Event()
        self.release.set()

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        await self.release.wait()
        self.clock.now += 5.0  # the answer comes, or is handled, long after it was asked
        return {tp: self.ends[tp] for tp in partitions}


async def test_a_partition_is_read_up_to_when_its_end_was_asked_not_when_the_answer_came() -> None:
    clock = Clock(1_000.0)
    broker = Broker({TP: 10}, clock)
    broker.release.clear()
    probe = ReadProbe(broker, lambda: [TP], clock)
    assert probe.read_to(TP, 10) is None  # nothing asked yet: nothing is known
    probe.ask()
    await asyncio.sleep(0)  # the request goes out
    probe.ask()  # one request in flight at a time
    assert broker.asked == 1
    assert probe.read_to(TP, 10) is None  # asked, not answered: still nothing known
    broker.release.set()
    await probe.answered()
    assert probe.read_to(TP, 10) == 1_000_000 - SKEW_MS  # the asking time, not 1,005 s
    assert probe.read_to(TP, 9) is None  # a record below the end is still unread
    await probe.close()


async def test_a_new_answer_moves_the_time_on_and_counts_the_records_appended_since() -> None:
    clock = Clock(2_000.0)
    broker = Broker({TP: 3}, clock)
    probe = ReadProbe(broker, lambda: [TP], clock)
    probe.ask()
    await probe.answered()
    assert probe.read_to(TP, 3) == 2_000_000 - SKEW_MS
    broker.ends[TP] = 5  # two more records appended
    probe.ask()  # asked at 2,005 s: the first answer moved the clock on
    await probe.answered()
    assert probe.read_to(TP, 3) is None  # read to 3 of 5 now
    assert probe.read_to(TP, 5) == 2_005_000 - SKEW_MS
    await probe.close()
