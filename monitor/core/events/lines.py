"""One line of ``replay`` input: a Kafka record in JSON Lines, as a topic dump carries it.

::

    {"topic": "exchange.trades", "key": "dmm", "value": {...},
     "timestamp": "2024-05-31T13:26:00.123Z"}

``key`` and ``timestamp`` (the record's Kafka timestamp: RFC 3339, or whole
milliseconds since the epoch) are optional. :func:`parse_line` reads the envelope
and keeps ``value`` as the raw JSON it was written as, so that
:func:`monitor.core.events.decode` decodes the event from those bytes, exactly as
the worker decodes a record's value::

    record = parse_line(line)
    event = decode(record.topic, record.key, record.value)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Union

import msgspec

from monitor.core.errors import InvalidEvent
from monitor.core.events import (
    KEY_FIELDS,
    MAX_MESSAGE_BYTES,
    TOPIC_TYPES,
    Event,
    Topic,
    decode,
    parse_json,
)
from monitor.core.events.text import parse_rfc3339

FIELDS = frozenset({"topic", "key", "value", "timestamp"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOPICS: dict[str, Topic] = {topic.value: topic for topic in Topic}
_NULL = msgspec.Raw(b"null")


class RecordLine(msgspec.Struct, frozen=True, gc=False):
    """One parsed line: the record's topic, key, raw value and Kafka timestamp."""

    topic: Topic
    key: str | None
    value: bytes
    timestamp: datetime | None


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # Any: each field is checked below, with the message replay has always given
    topic: Any = None
    key: Any = None
    value: msgspec.Raw = _NULL  # a line without a value carries null, refused by decode
    timestamp: Any = None


# float_hook: a timestamp written as 1717161960123.0 is read from its text, not a float
_decode_envelope = msgspec.json.Decoder(_Envelope, float_hook=Decimal).decode


def parse_line(line: bytes | str) -> RecordLine:
    """The record one line carries; raises InvalidEvent naming what is wrong.

    The value is not looked into: :func:`~monitor.core.events.decode` does that.
    """
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("value", f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        envelope = _decode_envelope(data)
    except (msgspec.DecodeError, RecursionError) as error:
        raise _refusal(data, str(error)) from None
    return _record(envelope.topic, envelope.key, bytes(envelope.value), envelope.timestamp)


class LineEvent(msgspec.Struct, frozen=True, gc=False):
    """One line decoded whole: its record's topic and Kafka timestamp, and its event."""

    topic: Topic
    timestamp: datetime | None
    event: Event


# A line read in one pass: the envelope with its value decoded as the event of its topic
# (the topic is the tag of a union of one envelope a topic). Whatever this refuses,
# parse_line then decode read again, and say why.
_WHOLE_LINES: dict[type, tuple[Topic, str]] = {
    msgspec.defstruct(
        f"_{topic.name.title().replace('_', '')}Line",
        [("value", kind), ("key", str | None, None), ("timestamp", Any, None)],
        tag=topic.value,
        tag_field="topic",
        forbid_unknown_fields=True,
        gc=False,
    ): (topic, KEY_FIELDS[topic])
    for topic, kind in TOPIC_TYPES.items()
}
_decode_whole = msgspec.json.Decoder(
    Union[tuple(_WHOLE_LINES)],  # noqa: UP007 (a union built at run time)
    float_hook=Decimal,
).decode


def decode_line(line: bytes | str) -> LineEvent:
    """The record one line carries and its event; raises InvalidEvent naming what is wrong.

    The same event, and the same refusals, as :func:`parse_line` then
    :func:`~monitor.core.events.decode`; a line that is right is read in one pass
    (:func:`whole_line`), at about half the instructions.
    """
    whole = whole_line(line)
    if whole is not None:
        return whole
    record = parse_line(line)
    return LineEvent(record.topic, record.timestamp, decode(record.topic, record.key, record.value))


def whole_line(line: bytes | str) -> LineEvent | None:
    """A line that is right in every respect, read in one pass; None for any other.

    What this takes, :func:`parse_line` then :func:`~monitor.core.events.decode`
    take alike; what it does not, they refuse, and say why.
    """
    # msgspec reads an ASCII str as it is, as long in UTF-8 as in characters: no copy
    data = line
    if isinstance(data, str) and not data.isascii():
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > MAX_MESSAGE_BYTES:
        return None
    try:
        whole = _decode_whole(data)
        timestamp = None if whole.timestamp is None else record_time(whole.timestamp)
    except Exception:  # the slow path reads it again, and says why
        return None
    topic, key_field = _WHOLE_LINES[type(whole)]
    event: Event = whole.value
    if whole.key is not None and whole.key != getattr(event, key_field):
        return None  # decode refuses it: the key is not the event's owner
    return LineEvent(topic, timestamp, event)


def _record(topic_name: Any, key: Any, value: bytes, timestamp: Any) -> RecordLine:
    topic = _TOPICS.get(topic_name) if type(topic_name) is str else None
    if topic is None:
        raise InvalidEvent("topic", f"{topic_name!r} is not an input topic")
    if key is not None and type(key) is not str:
        raise InvalidEvent("key", "must be a string")
    return RecordLine(topic, key, value, None if timestamp is None else record_time(timestamp))


def record_time(value: Any) -> datetime:
    """A Kafka record timestamp: RFC 3339 with an offset, or whole epoch milliseconds."""
    if type(value) is str:
        try:
            return parse_rfc3339(value)
        except ValueError:
            pass
    elif type(value) is Decimal and value.is_finite() and value.adjusted() < 20:
        if value == value.to_integral_value():  # 1717161960123.0, 1.717161960123e12
            return record_time(int(value))
    elif type(value) is int:
        try:
            return _EPOCH + timedelta(milliseconds=value)  # exact, unlike fromtimestamp
        except OverflowError:
            pass
    raise InvalidEvent(
        "timestamp", "must be an RFC 3339 time with an offset or whole epoch milliseconds"
    )


def _refusal(data: bytes, error: str) -> InvalidEvent:
    """Why the line is not a record: the JSON first, in the standard library's words."""
    record = parse_json(data)  # raises for what is not UTF-8 JSON, or holds NaN
    if not isinstance(record, dict):
        return InvalidEvent("line", "must be a JSON object with topic, value and optional key")
    unknown = set(record) - FIELDS
    if unknown:
        return InvalidEvent("line", f"unknown fields {sorted(unknown)}")
    _record(record.get("topic"), record.get("key"), b"", record.get("timestamp"))  # may raise
    # JSON the standard library reads and msgspec does not: a lone surrogate escape
    return InvalidEvent(
        "value", f"not JSON this monitor reads ({error}; a lone surrogate escape is not text)"
    )
