"""The dead-letter record of a rejected input message (contract section 5)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from monitor.core.money import rfc3339

# The largest record the worker puts on reserve.deadletter (the topic is created to
# take it). The broker's default limit for an input message is 1 MiB; its bytes in
# base64 take 4/3 of that, so any input the broker accepts by default fits whole.
DEADLETTER_MAX_BYTES = 4 * 1024 * 1024
# room left for the record's other fields when a value must be cut to fit
_ENVELOPE_BYTES = 64 * 1024


def deadletter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: str,
    received_at: datetime,
    limit: int = DEADLETTER_MAX_BYTES,
) -> bytes:
    """The JSON bytes published on ``reserve.deadletter``, carrying the original bytes.

    A value too large for ``limit`` (only where input topics take messages of more
    than about 3 MiB) keeps its first bytes, and ``value_size`` says how many it had:
    a record the topic refuses would be lost whole, and stop the agent that sent it.
    """
    document = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key_b64": _b64(key),
        "value_b64": _b64(value),
        "error": error,
        "received_at": rfc3339(received_at),
    }
    body = json.dumps(document).encode("utf-8")
    if len(body) <= limit or value is None:
        return body
    kept = max(0, (limit - _ENVELOPE_BYTES - len(key or b"") * 2) * 3 // 4)
    document["value_b64"] = _b64(value[:kept])
    document["value_size"] = len(value)
    return json.dumps(document).encode("utf-8")


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")
