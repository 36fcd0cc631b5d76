"""The input events of the contract (section 3), validated strictly at the edge.

:func:`decode` turns the raw bytes of one Kafka record into a frozen event or
raises :class:`~monitor.core.errors.InvalidEvent` with ``"<field>: <message>"``.

The events are frozen ``msgspec`` structs, decoded straight from the bytes.
Amounts and timestamps reach them as the JSON gave them (a string, or a JSON
number parsed into a :class:`~decimal.Decimal` from its text, never through a
binary float), and ``__post_init__`` checks that text against the contract and
turns it into a ``Decimal`` or a UTC ``datetime``. Each event's fields are
declared once, here: the field types carry msgspec's constraints, the checks run
after it, and the JSON Schema of the AsyncAPI document (:func:`schema_model`).

Whatever the fast decoder refuses is decoded again the plain way: the standard
library parses the whole JSON first (so "not UTF-8", "not JSON", ``NaN`` and
deep nesting are named as such), then the document is validated field by field,
and the refusal names the field and what is wrong with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Literal,
    cast,
    final,
    get_args,
    get_origin,
    get_type_hints,
)

import msgspec
from msgspec.structs import force_setattr
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model

from monitor.core.errors import InvalidEvent

MAX_MESSAGE_BYTES = 64 * 1024
# Amounts beyond these overflow the money arithmetic (or its rounding to cents) far
# from the edge, inside a running total; no real quantity, price or balance needs more.
MAX_INTEGER_DIGITS = 24
MAX_DECIMAL_PLACES = 30
# Event times outside these years would push the clock's arithmetic (a window back, the
# time elapsed forward) out of the range of datetime.
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(9000, 1, 1, tzinfo=UTC)
EXCHANGE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
SYMBOL_PATTERN = r"^[A-Za-z0-9._-]+$"
# Decimal() also reads "1_000" and non-ASCII digits; the contract's amount strings are ASCII
_AMOUNT_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# fromisoformat also takes basic forms ("20240531T132600Z") and times without seconds
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class Topic(StrEnum):
    """The input topics, by their unprefixed contract names."""

    TRADES = "exchange.trades"
    WALLET_BALANCES = "exchange.wallet-balances"
    LEDGER = "exchange.ledger"
    PRICES = "market.prices"


class Custody(StrEnum):
    HOT = "hot"
    COLD = "cold"


class Holder(StrEnum):
    CUSTOMER = "customer"
    GUARANTEE = "guarantee"
    HOUSE = "house"


# -- amounts and timestamps: the contract's text, made exact ---------------------------
# Each raises ValueError with the message; the field is named by whoever calls it.


def _to_decimal(value: Any) -> Decimal:
    if type(value) is str and value.isascii():
        # digits, or digits, a point and digits (what _AMOUNT_TEXT takes without an
        # exponent; str.isdigit() of ASCII text is [0-9]): only the range is left to check
        whole, point, fraction = value.partition(".")
        if whole.isdigit() and (not point or fraction.isdigit()):
            number = Decimal(value)
            if number.adjusted() < MAX_INTEGER_DIGITS and len(fraction) <= MAX_DECIMAL_PLACES:
                return number
    return _to_decimal_checked(value)


def _to_decimal_checked(value: Any) -> Decimal:
    """Every other input (JSON numbers, exponents, anything wrong): each check in turn."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a decimal number written as a string, e.g. "4502.9"')
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number, not NaN or Infinity")
    if number < 0:
        raise ValueError("must not be negative")
    if isinstance(value, str) and not _AMOUNT_TEXT.fullmatch(value.strip()):
        raise ValueError(f'{value!r} is not a plain ASCII decimal number such as "4502.9"')
    if not _in_range(number):
        raise ValueError(
            f"is out of range: at most {MAX_INTEGER_DIGITS} digits before the decimal point "
            f"and {MAX_DECIMAL_PLACES} after"
        )
    return number


def _in_range(number: Decimal) -> bool:
    if not number:
        return True
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: checked before
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    places = -(exponent + trailing_zeros)
    return number.adjusted() < MAX_INTEGER_DIGITS and places <= MAX_DECIMAL_PLACES


def parse_rfc3339(value: Any) -> datetime:
    """An RFC 3339 timestamp with an offset, in extended form with seconds, in UTC.

    Raises ValueError saying what is wrong with ``value``.
    """
    if type(value) is str and (_is_plain_utc(value) or _RFC3339.fullmatch(value)):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:  # the right shape, but no such date or time: 2024-02-30
            raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
        if moment.tzinfo is UTC:
            return moment
        try:
            return moment.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
            raise ValueError(f"{value!r} is out of the range of dates") from None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)  # an event built in Python, or copied
    return _explain_timestamp(value)


def _is_plain_utc(text: str) -> bool:
    """``2024-05-31T13:26:00Z`` by its punctuation: the commonest form, checked quicker
    than by the regex. The digits between are left to ``fromisoformat``, which refuses
    anything but ASCII digits there (tests/unit/test_events_fast_paths.py)."""
    return (
        len(text) == 20
        and text[10] == "T"
        and text[19] == "Z"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    )


def _explain_timestamp(value: Any) -> datetime:
    """Why ``value`` is not an RFC 3339 timestamp; raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None or "T" not in value.upper():
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2024-05-31T13:26:00Z")
    raise ValueError(
        f"{value!r} is not an RFC 3339 timestamp such as 2024-05-31T13:26:00Z "
        "(extended format, with seconds)"
    )


# Event times met lately, as taken: a feed's snapshots share their times (every wallet of
# an exchange as of one block, every asset's price of one tick), so half the records of a
# steady stream repeat a recent one. Bounded: emptied when full.
_EVENT_TIMES: dict[str, datetime] = {}
_EVENT_TIMES_KEPT = 1024


def _to_event_time(value: Any) -> datetime:
    if type(value) is str:
        moment = _EVENT_TIMES.get(value)
        if moment is not None:
            return moment
    moment = parse_rfc3339(value)
    # the bounds are the first instants of their years, and the moment is in UTC
    if not EARLIEST_EVENT_TIME.year <= moment.year < LATEST_EVENT_TIME.year:
        raise ValueError(
            f"{value!r} is out of range: event times fall in the years "
            f"{EARLIEST_EVENT_TIME.year} to {LATEST_EVENT_TIME.year - 1}"
        )
    if type(value) is str:
        if len(_EVENT_TIMES) >= _EVENT_TIMES_KEPT:
            _EVENT_TIMES.clear()
        _EVENT_TIMES[value] = moment
    return moment


class _Matches:
    """A string field's pattern, checked by ``__post_init__``.

    Exchange ids, assets and currencies come from a small set, so the values that
    matched are remembered (up to a bound): a set lookup instead of a regex search.
    """

    REMEMBERED = 4096

    def __init__(self, pattern: str) -> None:
        # the pattern is JSON Schema's ("^...$"); in Python's re "$" would also match
        # before a final newline, and "dmm\n" is not an exchange id
        self.regex = re.compile(pattern.removesuffix("$") + r"\Z")
        self.message = f"String should match pattern '{pattern}'"
        self.matched: set[str] = set()

    def __call__(self, value: str) -> str:
        if value not in self.matched:
            if not self.regex.match(value):
                raise ValueError(self.message)
            if len(self.matched) < self.REMEMBERED:
                self.matched.add(value)
        return value


# -- field types ---------------------------------------------------------------------
# Each carries what msgspec checks while it decodes (msgspec.Meta), what
# _Event.__post_init__ checks after it (a BeforeValidator's function, a _Matches),
# and what pydantic needs for the JSON Schema of the AsyncAPI document and for the
# output models of monitor.messages. Amounts and timestamps are decoded as Any and
# made exact in __post_init__; type checkers see what the events hold.

if TYPE_CHECKING:
    Amount = Decimal
    Timestamp = datetime
    EventTime = datetime
else:
    Amount = Annotated[
        Any,
        BeforeValidator(_to_decimal),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": f"^{_AMOUNT_TEXT.pattern}$"},
                    {"type": "number", "minimum": 0},
                ],
                "description": 'A non-negative decimal number, best written as a string: "4502.9".',
            }
        ),
    ]
    Timestamp = Annotated[
        Any,
        BeforeValidator(parse_rfc3339),
        WithJsonSchema(
            {
                "type": "string",
                "format": "date-time",
                "pattern": f"^{_RFC3339.pattern}$",
                "description": "RFC 3339 with an offset: 2024-05-31T13:26:00Z.",
            }
        ),
    ]
    # an event's own time (``ts``): a timestamp within the years the engine can judge
    EventTime = Annotated[
        Any,
        BeforeValidator(_to_event_time),
        WithJsonSchema(
            {
                "type": "string",
                "format": "date-time",
                "pattern": f"^{_RFC3339.pattern}$",
                "description": "RFC 3339 with an offset, between 1970 and 8999: "
                "2024-05-31T13:26:00Z.",
            }
        ),
    ]
ExchangeId = Annotated[str, _Matches(EXCHANGE_ID_PATTERN), Field(pattern=EXCHANGE_ID_PATTERN)]
Symbol = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=32),
    _Matches(SYMBOL_PATTERN),
    Field(min_length=1, max_length=32, pattern=SYMBOL_PATTERN),
]
Label = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128), Field(min_length=1, max_length=128)
]


def _conversion(metadata: Any) -> Callable[[Any], Any] | None:
    """What ``__post_init__`` runs for one item of a field type's metadata, if anything."""
    if isinstance(metadata, BeforeValidator):
        return cast(Callable[[Any], Any], metadata.func)
    if isinstance(metadata, _Matches):
        return metadata
    return None


# gc=False: an event holds only strings, decimals, datetimes and enums, never a cycle
class _Event(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    event_id: Label
    ts: EventTime

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # msgspec takes a struct's __post_init__ when it makes the class, right after this
        super().__init_subclass__(**kwargs)
        cls.__post_init__ = _post_init_of(cls)  # type: ignore[attr-defined]

    def _check(self) -> None:
        """What an event checks across its fields, after each field's own checks."""


def _post_init_of(kind: type[_Event]) -> Callable[[Any], None]:
    """The ``__post_init__`` of ``kind``: its fields' conversions and pattern checks.

    Written out field by field, as :mod:`dataclasses` writes an ``__init__``: the loop
    over ``(field, function)`` pairs it replaces cost 5,300 instructions an event more
    (``make bench-instructions``, session 14). A value that matched a pattern before is
    found in the matched set without a call.
    """
    hints = get_type_hints(kind, include_extras=True)
    fields = [(name, hint) for name, hint in hints.items() if get_origin(hint) is not ClassVar]
    namespace: dict[str, Any] = {"InvalidEvent": InvalidEvent, "force_setattr": force_setattr}
    body: list[str] = []
    for name, hint in fields:
        for metadata in getattr(hint, "__metadata__", ()):
            convert = _conversion(metadata)
            if convert is None:
                continue
            index = len(namespace)
            namespace[f"convert_{index}"] = convert
            if isinstance(convert, _Matches):
                namespace[f"matched_{index}"] = convert.matched
                body += [
                    f"    if self.{name} not in matched_{index}:",
                    "        try:",
                    f"            convert_{index}(self.{name})",
                    "        except ValueError as error:",
                    f"            raise InvalidEvent({name!r}, str(error)) from None",
                ]
            else:
                body += [
                    "    try:",
                    f"        force_setattr(self, {name!r}, convert_{index}(self.{name}))",
                    "    except ValueError as error:",
                    f"        raise InvalidEvent({name!r}, str(error)) from None",
                ]
    if kind._check is not _Event._check:
        body.append("    self._check()")
    source = "def __post_init__(self):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(compile(source, f"<{kind.__name__}.__post_init__>", "exec"), namespace)
    post_init: Callable[[Any], None] = namespace["__post_init__"]
    return post_init


class _ExchangeEvent(_Event, frozen=True):
    exchange: ExchangeId


@final  # the engine tells events apart by their exact type
class Trade(_ExchangeEvent, frozen=True):
    """One trade or an aggregate over a short interval; adds ``notional`` to volume."""

    market: Label
    notional: Amount
    currency: Symbol


@final  # the engine tells events apart by their exact type
class WalletBalance(_ExchangeEvent, frozen=True):
    """An absolute snapshot of one asset in one wallet; the newest ``ts`` wins."""

    wallet: Label
    asset: Symbol
    balance: Amount
    custody: Custody
    holder: Holder


@final  # the engine tells events apart by their exact type
class Price(_Event, frozen=True):
    """Price of one unit of ``asset`` in ``currency`` (the reporting currency)."""

    asset: Symbol
    price: Amount
    currency: Symbol


class _LedgerEntry(_ExchangeEvent, frozen=True, tag_field="type"):
    """A ledger event: its ``type`` (the struct's tag) tells which one."""

    @property
    def type(self) -> str:
        tag = self.__struct_config__.tag
        assert isinstance(tag, str)
        return tag


@final  # the engine tells events apart by their exact type
class CustomerLiability(_LedgerEntry, frozen=True, tag="customer_liability"):
    """What the exchange owes its customers in ``asset``."""

    asset: Symbol
    amount: Amount


@final  # the engine tells events apart by their exact type
class ReserveFund(_LedgerEntry, frozen=True, tag="reserve_fund"):
    """Balance of the dedicated liability-reserve fund."""

    amount: Amount
    currency: Symbol


@final  # the engine tells events apart by their exact type
class InsurancePolicy(_LedgerEntry, frozen=True, tag="insurance_policy"):
    """An insurance policy; it counts only while ``valid_from <= t < valid_to``."""

    policy_id: Label
    coverage: Amount
    currency: Symbol
    valid_from: Timestamp
    valid_to: Timestamp

    def _check(self) -> None:
        if self.valid_to <= self.valid_from:
            raise InvalidEvent("value", "valid_to must be after valid_from")

    def in_force(self, moment: datetime) -> bool:
        return self.valid_from <= moment < self.valid_to


@final  # the engine tells events apart by their exact type
class OwnFunds(_LedgerEntry, frozen=True, tag="own_funds"):
    """The exchange's own funds (MiCA Art. 67)."""

    amount: Amount
    currency: Symbol


@final  # the engine tells events apart by their exact type
class FixedOverheads(_LedgerEntry, frozen=True, tag="fixed_overheads"):
    """The previous year's fixed overheads (MiCA Art. 67)."""

    annual_amount: Amount
    currency: Symbol


LedgerEvent = CustomerLiability | ReserveFund | InsurancePolicy | OwnFunds | FixedOverheads
ExchangeEvent = Trade | WalletBalance | LedgerEvent
Event = ExchangeEvent | Price

_LEDGER_TYPES: tuple[type[_LedgerEntry], ...] = (
    CustomerLiability,
    ReserveFund,
    InsurancePolicy,
    OwnFunds,
    FixedOverheads,
)


# what the value of a record of each input topic is
TOPIC_TYPES: dict[Topic, Any] = {
    Topic.TRADES: Trade,
    Topic.WALLET_BALANCES: WalletBalance,
    Topic.PRICES: Price,
    Topic.LEDGER: LedgerEvent,
}
# the field of its event that a record's key must equal, by topic
KEY_FIELDS: dict[Topic, str] = {
    Topic.TRADES: "exchange",
    Topic.WALLET_BALANCES: "exchange",
    Topic.LEDGER: "exchange",
    Topic.PRICES: "asset",
}
_TOPICS: dict[type[_Event], Topic] = {
    Trade: Topic.TRADES,
    WalletBalance: Topic.WALLET_BALANCES,
    Price: Topic.PRICES,
    **dict.fromkeys(_LEDGER_TYPES, Topic.LEDGER),
}
# float_hook: a JSON number with a fraction or an exponent becomes a Decimal of its text
_DECODERS: dict[Topic, Callable[[bytes], Event]] = {
    topic: msgspec.json.Decoder(kind, float_hook=Decimal).decode
    for topic, kind in TOPIC_TYPES.items()
}


# -- decoding ------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise InvalidEvent("value", f"{name} is not a number this monitor accepts")


def parse_json(value: bytes) -> Any:
    """UTF-8 JSON with every number as a Decimal; raises InvalidEvent."""
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("value", f"message of {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent("value", f"not UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        document = json.loads(
            text, parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as error:
        raise InvalidEvent("value", f"not JSON ({error.msg} at char {error.pos})") from None
    except RecursionError:
        raise InvalidEvent("value", "JSON nested too deeply") from None
    return document


def validate(topic: Topic, document: dict[str, Any]) -> Event:
    """The event of ``topic`` that ``document`` describes; raises InvalidEvent."""
    try:
        event: Event = msgspec.convert(document, TOPIC_TYPES[topic])
    except msgspec.ValidationError as error:
        raise _refusal(topic, document, str(error)) from None
    return event


def decode(topic: Topic, key: bytes | str | None, value: bytes) -> Event:
    """Decode and validate one input record; the key must agree with the value.

    ``key`` is the record key as Kafka gives it (bytes), or as text (a replay line).
    """
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("key", "not UTF-8") from None
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("value", f"message of {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        event = _DECODERS[topic](value)
    except Exception:
        # The fast decoder stops at the first thing it cannot take, in its own words.
        # The plain path decides instead, and says why: JSON first, then each field.
        return decode_document(topic, key, parse_json(value))
    if key is not None:
        _check_key(event, key)
    return event


def decode_document(topic: Topic, key: str | None, document: Any) -> Event:
    """Validate an already parsed record value; the key must agree with the value."""
    if not isinstance(document, dict):
        raise InvalidEvent("value", f"must be a JSON object, not {_json_kind(document)}")
    event = validate(topic, document)
    if key is not None:
        _check_key(event, key)
    return event


def _check_key(event: Event, key: str) -> None:
    """Refuse a record whose key is not its event's exchange, or a price's asset."""
    field = KEY_FIELDS[_TOPICS[type(event)]]
    owner = getattr(event, field)
    if key != owner:
        raise InvalidEvent("key", f"{key!r} does not match the {field} {owner!r}")


def _json_kind(document: Any) -> str:
    """What a parsed JSON value is, in JSON's words (``an array``, ``null``)."""
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "true or false"
    if isinstance(document, list):
        return "an array"
    if isinstance(document, str):
        return "a string"
    return "a number"


# -- refusals: the first field, in the contract's order, that is wrong ---------------
# msgspec stops at the first problem it meets in the document. A refusal instead
# names the first field of the event, in the order the fields are declared, that
# is missing or wrong (then any field the event does not have), each in the words
# this project has always used ("market: Field required").


def _refusal(topic: Topic, document: dict[str, Any], error: str) -> InvalidEvent:
    """Why ``document`` is not an event of ``topic``; ``error`` is msgspec's verdict."""
    kind: type[_Event] = TOPIC_TYPES[topic]
    known = set()
    if topic is Topic.LEDGER:
        if "type" not in document:
            return InvalidEvent("type", "Unable to extract tag using discriminator 'type'")
        tag = document["type"]
        tagged = next((k for k in _LEDGER_TYPES if k.__struct_config__.tag == tag), None)
        if tagged is None:
            tags = ", ".join(f"'{k.__struct_config__.tag}'" for k in _LEDGER_TYPES)
            return InvalidEvent(
                "type",
                f"Input tag '{tag}' found using 'type' does not match any of the expected "
                f"tags: {tags}",
            )
        kind = tagged
        known.add("type")
    for field in msgspec.structs.fields(kind):
        known.add(field.name)
        if field.name not in document:
            return InvalidEvent(field.name, "Field required")
        problem = _problem(field.type, document[field.name])
        if problem is not None:
            return InvalidEvent(field.name, problem)
    for name in document:
        if name not in known:
            return InvalidEvent(name or "value", "Extra inputs are not permitted")
    return InvalidEvent("value", error)


def _problem(annotation: Any, value: Any) -> str | None:
    """What is wrong with ``value`` for a field of type ``annotation``, or None."""
    base, *metadata = get_args(annotation) if get_origin(annotation) is Annotated else (annotation,)
    if isinstance(base, type) and issubclass(base, StrEnum):
        if not isinstance(value, str) or value not in base._value2member_map_:
            choices = [f"'{member.value}'" for member in base]
            return f"Input should be {', '.join(choices[:-1])} or {choices[-1]}"
        return None
    if base is str and not isinstance(value, str):
        return "Input should be a valid string"
    for rule in metadata:
        if isinstance(rule, msgspec.Meta):
            if rule.min_length is not None and len(value) < rule.min_length:
                plural = "" if rule.min_length == 1 else "s"
                return f"String should have at least {rule.min_length} character{plural}"
            if rule.max_length is not None and len(value) > rule.max_length:
                return f"String should have at most {rule.max_length} characters"
        convert = _conversion(rule)
        if convert is not None:
            try:
                convert(value)
            except ValueError as error:
                return str(error)
    return None


# -- the contract form --------------------------------------------------------------


def to_document(event: Event) -> dict[str, Any]:
    """The JSON-ready contract form of an event (decimals and times as strings)."""
    return cast(dict[str, Any], msgspec.to_builtins(event))


def from_document(topic: Topic, document: dict[str, Any]) -> Event:
    """Inverse of :func:`to_document` for state restored from a changelog."""
    return validate(topic, document)


def topic_of(event: Event) -> Topic:
    return _TOPICS[type(event)]


@cache
def schema_model(kind: type[Event]) -> type[BaseModel]:
    """A pydantic model with the fields of the event ``kind``, for its JSON Schema.

    The AsyncAPI document (:mod:`monitor.asyncapi`) is generated from these; the field
    types carry the schema of each field, and a ledger event's ``type`` comes after the
    fields every ledger event has, as a constant.
    """
    fields: list[tuple[str, Any]] = [
        (field.name, (field.type, ...)) for field in msgspec.structs.fields(kind)
    ]
    tag = kind.__struct_config__.tag
    if tag is not None:
        common = len(msgspec.structs.fields(_LedgerEntry))
        fields.insert(common, ("type", (cast(Any, Literal)[tag], ...)))
    model: type[BaseModel] = create_model(
        kind.__name__,
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__=kind.__doc__,
        __module__=__name__,
        **dict(fields),
    )
    return model
