"""A replay line: the record it carries, or why it carries none, named precisely."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.core.errors import InvalidEvent
from monitor.core.events import MAX_MESSAGE_BYTES, Topic, Trade, decode, decode_document
from monitor.core.events.lines import RecordLine, parse_line

TRADE = {
    "event_id": "t-1",
    "exchange": "dmm",
    "ts": "2024-05-31T13:26:00Z",
    "market": "BTC/JPY",
    "notional": "1250000",
    "currency": "JPY",
}


def text(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


def refusal(line: str | bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_line(line)
    return caught.value


def test_a_line_carries_the_topic_key_raw_value_and_record_time() -> None:
    record = parse_line(
        text(
            {
                "topic": "exchange.trades",
                "key": "dmm",
                "value": TRADE,
                "timestamp": "2024-05-31T13:26:00.123Z",
            }
        )
    )
    assert record == RecordLine(
        Topic.TRADES,
        "dmm",
        json.dumps(TRADE).encode(),
        datetime(2024, 5, 31, 13, 26, 0, 123000, tzinfo=UTC),
    )
    event = decode(record.topic, record.key, record.value)
    assert isinstance(event, Trade)
    assert event == decode_document(Topic.TRADES, "dmm", TRADE)


def test_key_and_timestamp_are_optional() -> None:
    record = parse_line(text({"topic": "market.prices", "value": {}}))
    assert (record.topic, record.key, record.value, record.timestamp) == (
        Topic.PRICES,
        None,
        b"{}",
        None,
    )


def test_bytes_and_text_lines_read_alike() -> None:
    line = text({"topic": "exchange.ledger", "key": "dmm", "value": {"type": "own_funds"}})
    assert parse_line(line) == parse_line(line.encode())


def test_the_value_is_kept_as_written_for_the_event_decoder() -> None:
    # numbers stay the text they were written as: decode makes them exact decimals
    raw = '{"topic": "exchange.trades", "value": {"notional": 0.1, "nested": [1, {"a": null}]}}'
    assert parse_line(raw).value == b'{"notional": 0.1, "nested": [1, {"a": null}]}'


def test_a_line_without_a_value_carries_null_which_decode_refuses() -> None:
    record = parse_line(text({"topic": "exchange.trades", "key": "dmm"}))
    with pytest.raises(InvalidEvent, match="value: must be a JSON object, not null"):
        decode(record.topic, record.key, record.value)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2024-05-31T13:26:00Z", datetime(2024, 5, 31, 13, 26, tzinfo=UTC)),
        ("2024-05-31T22:26:00.5+09:00", datetime(2024, 5, 31, 13, 26, 0, 500000, tzinfo=UTC)),
        (1717161960123, datetime(2024, 5, 31, 13, 26, 0, 123000, tzinfo=UTC)),
        (1717161960123.0, datetime(2024, 5, 31, 13, 26, 0, 123000, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_the_record_time_is_rfc3339_or_epoch_milliseconds(written: Any, expected: datetime) -> None:
    record = parse_line(text({"topic": "exchange.trades", "value": {}, "timestamp": written}))
    assert record.timestamp == expected
    assert record.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "written",
    [
        "2024-05-31T13:26:00",  # no offset
        "2024-05-31 13:26:00Z",  # not RFC 3339's extended form
        "20240531T132600Z",
        "2024-05-31T13:26Z",
        "yesterday",
        1717161960123.5,  # not whole milliseconds
        True,
        [1717161960123],
        10**20,  # past the year 9999
    ],
)
def test_refuses_a_record_time_it_cannot_read(written: Any) -> None:
    error = refusal(text({"topic": "exchange.trades", "value": {}, "timestamp": written}))
    assert (error.field, error.message) == (
        "timestamp",
        "must be an RFC 3339 time with an offset or whole epoch milliseconds",
    )


def test_refuses_a_huge_exponent_without_computing_it() -> None:
    error = refusal('{"topic": "exchange.trades", "value": {}, "timestamp": 1e999999999}')
    assert error.field == "timestamp"


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("this is not json", "value", "not JSON (Expecting value at char 0)"),
        ('{"topic": "exchange.trades"', "value", "not JSON"),
        ('{"topic": "exchange.trades", "value": NaN}', "value", "NaN is not a number"),
        ("[1, 2]", "line", "must be a JSON object with topic, value and optional key"),
        ('{"topic": "exchange.trades", "partition": 3}', "line", "unknown fields ['partition']"),
        ('{"value": {}}', "topic", "None is not an input topic"),
        ('{"topic": "exchange.unknown"}', "topic", "'exchange.unknown' is not an input topic"),
        ('{"topic": 5}', "topic", "5 is not an input topic"),
        ('{"topic": "exchange.trades", "key": 3}', "key", "must be a string"),
        ('{"topic": "exchange.trades", "key": ["dmm"]}', "key", "must be a string"),
    ],
)
def test_refuses_a_line_that_is_not_a_record(line: str, field: str, message: str) -> None:
    error = refusal(line)
    assert error.field == field
    assert message in error.message
    assert str(error) == f"{field}: {error.message}"


def test_refuses_a_line_that_is_not_utf8() -> None:
    error = refusal(b'{"topic": "exchange.trades", "key": "\xff"}')
    assert (error.field, error.message) == ("value", "not UTF-8 (invalid start byte at byte 37)")


def test_refuses_an_oversized_line_before_reading_it() -> None:
    line = text({"topic": "exchange.trades", "value": {"market": "M" * MAX_MESSAGE_BYTES}})
    error = refusal(line)
    assert error.field == "value"
    assert f"exceeds {MAX_MESSAGE_BYTES}" in error.message


def test_refuses_deep_nesting() -> None:
    error = refusal('{"topic": "exchange.trades", "value": ' + "[" * 30_000 + "]" * 30_000 + "}")
    assert (error.field, error.message) == ("value", "JSON nested too deeply")


def test_a_lone_surrogate_escape_is_refused_with_a_reason() -> None:
    # the standard library reads it as a str that is not text; msgspec does not read it
    error = refusal('{"topic": "exchange.trades", "value": {"event_id": "\\ud800"}}')
    assert error.field == "value"
    assert "lone surrogate" in error.message


def test_the_envelope_is_checked_before_the_value_is_looked_into() -> None:
    line = '{"topic": "exchange.nope", "value": {"event_id": "\\ud800"}}'
    assert refusal(line).field == "topic"


def test_a_record_line_is_frozen() -> None:
    record = parse_line(text({"topic": "exchange.trades", "value": {}}))
    with pytest.raises(AttributeError):
        record.key = "dmm"  # type: ignore[misc]
