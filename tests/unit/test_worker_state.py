"""A task's state outside the engine: the price log it shares and its changelog records.

Pure: no broker. The broker tests (tests/integration/test_exactly_once.py) show
the whole: restored tasks publishing what replay prints.
"""

from __future__ import annotations

import json

from aiokafka import TopicPartition

from monitor.worker.changelog import PRICES_POSITION, Restored, _apply
from monitor.worker.prices import PriceLog, PriceRecord

P0, P1 = TopicPartition("market.prices", 0), TopicPartition("market.prices", 1)


def _prices(partition: int, offsets: range, timestamp: int = 1_000) -> list[PriceRecord]:
    return [PriceRecord(partition, o, timestamp + o, b"BTC", b"{}") for o in offsets]


def test_a_task_takes_the_records_before_its_position_as_history_and_the_rest_as_input() -> None:
    log = PriceLog([P0, P1])
    log.extend(P0, _prices(0, range(10, 15)))
    log.extend(P1, _prices(1, range(3, 5)))
    assert [r.offset for r in log.before(P0, 12)] == [10, 11]
    assert [r.offset for r in log.since(P0, 12)] == [12, 13, 14]
    assert log.since(P1, 9) == [] and len(log.before(P1, 9)) == 2


def test_the_log_forgets_what_is_older_than_the_history_but_not_what_a_task_has_to_take() -> None:
    log = PriceLog([P0])
    log.start[P0] = 10
    log.extend(P0, _prices(0, range(10, 20), timestamp=0))  # appended at 10..19 ms
    # older than 15 ms is history no longer kept; a task at offset 13 still needs 13 on
    assert log.trim({P0: 13}, horizon_ms=15) == 3
    assert log.start[P0] == 13
    assert [r.offset for r in log.since(P0, 0)] == list(range(13, 20))
    assert log.trim({}, horizon_ms=15) == 2  # no task left behind: the horizon alone
    assert log.start[P0] == 15


def test_a_price_record_is_decoded_once_and_a_bad_one_carries_its_error() -> None:
    good = {
        "event_id": "p-1",
        "asset": "BTC",
        "currency": "JPY",
        "price": "10000000",
        "ts": "2024-05-31T13:00:00Z",
    }
    record = PriceRecord(0, 1, 1, b"BTC", json.dumps(good).encode())
    assert record.event is record.event  # the same decoded price for every task
    assert not isinstance(record.event, str)
    bad = PriceRecord(0, 2, 2, b"BTC", b'{"asset": "BTC"}')
    assert isinstance(bad.event, str) and bad.event


def test_a_restore_keeps_the_newest_value_of_each_key_and_forgets_deleted_ones() -> None:
    restored = Restored()
    _apply(restored, '["wallet","dmm","hot","BTC"]', b'{"balance":"1"}')
    _apply(restored, '["wallet","dmm","hot","BTC"]', b'{"balance":"2"}')
    _apply(restored, '["volume","dmm",478000]', b'{"JPY":"5"}')
    _apply(restored, '["volume","dmm",478000]', None)  # a tombstone
    _apply(restored, PRICES_POSITION, b'{"0":12,"1":4}')
    assert restored.entries == {'["wallet","dmm","hot","BTC"]': {"balance": "2"}}
    assert restored.prices_position == {0: 12, 1: 4}
