"""The dead-letter record: the original bytes, whole unless they cannot fit the topic."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from monitor.worker.deadletter import DEADLETTER_MAX_BYTES, deadletter_record

RECEIVED = datetime(2024, 5, 31, 13, 0, 1, tzinfo=UTC)


def _record(
    value: bytes | None, key: bytes | None = b"dmm", limit: int = DEADLETTER_MAX_BYTES
) -> bytes:
    return deadletter_record(
        topic="exchange.trades",
        partition=3,
        offset=1812,
        key=key,
        value=value,
        error="value: not JSON",
        received_at=RECEIVED,
        limit=limit,
    )


def _letter(value: bytes | None, key: bytes | None = b"dmm") -> dict:
    return json.loads(_record(value, key))


def test_the_record_carries_the_contract_fields_and_the_original_bytes() -> None:
    letter = _letter(b"\xff\xfe not json")
    assert letter == {
        "topic": "exchange.trades",
        "partition": 3,
        "offset": 1812,
        "key_b64": base64.b64encode(b"dmm").decode(),
        "value_b64": base64.b64encode(b"\xff\xfe not json").decode(),
        "error": "value: not JSON",
        "received_at": "2024-05-31T13:00:01Z",
    }


def test_a_missing_key_or_value_stays_null() -> None:
    letter = _letter(None, key=None)
    assert letter["key_b64"] is None and letter["value_b64"] is None


def test_a_message_as_large_as_the_broker_takes_by_default_is_kept_whole() -> None:
    value = b"x" * (1024 * 1024)
    record = _record(value)
    assert len(record) <= DEADLETTER_MAX_BYTES
    assert base64.b64decode(json.loads(record)["value_b64"]) == value
    assert "value_size" not in json.loads(record)


def test_a_value_beyond_the_limit_keeps_its_head_and_says_its_size() -> None:
    value = bytes(range(256)) * 2000  # 512,000 bytes
    limit = 256 * 1024
    record = _record(value, limit=limit)
    assert len(record) <= limit
    letter = json.loads(record)
    kept = base64.b64decode(letter["value_b64"])
    assert kept and value.startswith(kept)
    assert letter["value_size"] == len(value)
