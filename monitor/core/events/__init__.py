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
from datetime import datetime
from decimal import Decimal
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
from monitor.core.events.text import (
    AMOUNT_TEXT,
    RFC3339,
    parse_rfc3339,
    to_decimal,
    to_event_time,
)

MAX_MESSAGE_BYTES = 64 * 1024
EXCHANGE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
SYMBOL_PATTERN = r"^[A-Za-z0-9._-]+$"


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
        BeforeValidator(to_decimal),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": f"^{AMOUNT_TEXT.pattern}$"},
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
                "pattern": f"^{RFC3339.pattern}$",
                "description": "RFC 3339 with an offset: 2024-05-31T13:26:00Z.",
            }
        ),
    ]
    # an event's own time (``ts``): a timestamp within the years the engine can judge
    EventTime = Annotated[
        Any,
        BeforeValidator(to_event_time),
        WithJsonSchema(
            {
                "type": "string",
                "format": "date-time",
                "pattern": f"^{RFC3339.pattern}$",
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
