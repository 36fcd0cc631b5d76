"""The dead-letter record of a rejected input message (contract section 5)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from monitor.core.money import rfc3339


def deadletter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: str,
    received_at: datetime,
) -> bytes:
    """The JSON bytes published on ``reserve.deadletter``, carrying the original bytes."""
    return json.dumps(
        {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key_b64": None if key is None else base64.b64encode(key).decode("ascii"),
            "value_b64": None if value is None else base64.b64encode(value).decode("ascii"),
            "error": error,
            "received_at": rfc3339(received_at),
        }
    ).encode("utf-8")
