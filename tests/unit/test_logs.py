"""Repeated log lines are held back, and counted when the next one goes through."""

from __future__ import annotations

import logging

from monitor.worker.logs import RepeatFilter, hold_back_repeats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka", level, __file__, 1, message, args, None)


def test_a_repeated_line_goes_through_once_per_interval_with_the_count_held_back() -> None:
    clock = Clock()
    repeats = RepeatFilter(interval=10.0, clock=clock)
    passed = []
    for second in range(25):
        clock.now = float(second)
        for _ in range(3):
            record = _record("Unable connect to node with id %s: %s", 1, "refused")
            if repeats.filter(record):
                passed.append((second, record.getMessage()))
    assert passed == [
        (0, "Unable connect to node with id 1: refused"),
        (10, "Unable connect to node with id 1: refused (29 more like this held back)"),
        (20, "Unable connect to node with id 1: refused (29 more like this held back)"),
    ]


def test_distinct_lines_and_levels_are_not_held_back() -> None:
    repeats = RepeatFilter(interval=10.0, clock=Clock())
    assert repeats.filter(_record("Failed fetch messages from %s", 1))
    assert repeats.filter(_record("Failed fetch messages from %s", 2))
    assert repeats.filter(_record("Failed fetch messages from %s", 1, level=logging.WARNING))


def test_the_filter_goes_on_the_kafka_client_loggers() -> None:
    logger = logging.getLogger("aiokafka.consumer.fetcher")
    repeats = hold_back_repeats()
    try:
        assert repeats in logger.filters and repeats in logging.getLogger("aiokafka").filters
        assert repeats not in logging.getLogger("monitor").filters
    finally:
        for name in ("aiokafka", *logging.root.manager.loggerDict):
            logging.getLogger(name).removeFilter(repeats)
