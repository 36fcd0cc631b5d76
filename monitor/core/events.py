"""The input events of the contract (section 3), validated strictly at the edge.

:func:`decode` turns the raw bytes of one Kafka record into a frozen event or
raises :class:`~monitor.core.errors.InvalidEvent` with ``"<field>: <message>"``.
JSON numbers are parsed straight into :class:`~decimal.Decimal`; ``NaN`` and
``Infinity`` are refused before any model sees them, so no binary float ever
carries money.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

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


def _to_decimal(value: Any) -> Decimal:
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


def _to_utc(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None or "T" not in value.upper():
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2024-05-31T13:26:00Z")
    if not _RFC3339.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an RFC 3339 timestamp such as 2024-05-31T13:26:00Z "
            "(extended format, with seconds)"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
        raise ValueError(f"{value!r} is out of the range of dates") from None


def _to_event_time(value: Any) -> datetime:
    moment = _to_utc(value)
    if not EARLIEST_EVENT_TIME <= moment < LATEST_EVENT_TIME:
        raise ValueError(
            f"{value!r} is out of range: event times fall in the years "
            f"{EARLIEST_EVENT_TIME.year} to {LATEST_EVENT_TIME.year - 1}"
        )
    return moment


# WithJsonSchema: what the validators accept, for the AsyncAPI document (monitor.asyncapi)
Amount = Annotated[
    Decimal,
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
    datetime,
    BeforeValidator(_to_utc),
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
    datetime,
    BeforeValidator(_to_event_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{_RFC3339.pattern}$",
            "description": "RFC 3339 with an offset, between 1970 and 8999: 2024-05-31T13:26:00Z.",
        }
    ),
]
ExchangeId = Annotated[str, Field(pattern=EXCHANGE_ID_PATTERN)]
Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]
Label = Annotated[str, Field(min_length=1, max_length=128)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    event_id: Label
    ts: EventTime


class _ExchangeEvent(_Event):
    exchange: ExchangeId


class Trade(_ExchangeEvent):
    """One trade or an aggregate over a short interval; adds ``notional`` to volume."""

    market: Label
    notional: Amount
    currency: Symbol


class WalletBalance(_ExchangeEvent):
    """An absolute snapshot of one asset in one wallet; the newest ``ts`` wins."""

    wallet: Label
    asset: Symbol
    balance: Amount
    custody: Custody
    holder: Holder


class Price(_Event):
    """Price of one unit of ``asset`` in ``currency`` (the reporting currency)."""

    asset: Symbol
    price: Amount
    currency: Symbol


class CustomerLiability(_ExchangeEvent):
    """What the exchange owes its customers in ``asset``."""

    type: Literal["customer_liability"]
    asset: Symbol
    amount: Amount


class ReserveFund(_ExchangeEvent):
    """Balance of the dedicated liability-reserve fund."""

    type: Literal["reserve_fund"]
    amount: Amount
    currency: Symbol


class InsurancePolicy(_ExchangeEvent):
    """An insurance policy; it counts only while ``valid_from <= t < valid_to``."""

    type: Literal["insurance_policy"]
    policy_id: Label
    coverage: Amount
    currency: Symbol
    valid_from: Timestamp
    valid_to: Timestamp

    @model_validator(mode="after")
    def _period_is_ordered(self) -> InsurancePolicy:
        if self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self

    def in_force(self, moment: datetime) -> bool:
        return self.valid_from <= moment < self.valid_to


class OwnFunds(_ExchangeEvent):
    """The exchange's own funds (MiCA Art. 67)."""

    type: Literal["own_funds"]
    amount: Amount
    currency: Symbol


class FixedOverheads(_ExchangeEvent):
    """The previous year's fixed overheads (MiCA Art. 67)."""

    type: Literal["fixed_overheads"]
    annual_amount: Amount
    currency: Symbol


LedgerEvent = CustomerLiability | ReserveFund | InsurancePolicy | OwnFunds | FixedOverheads
ExchangeEvent = Trade | WalletBalance | LedgerEvent
Event = ExchangeEvent | Price

_LEDGER = TypeAdapter(Annotated[LedgerEvent, Field(discriminator="type")])
_MODELS: dict[Topic, type[BaseModel]] = {
    Topic.TRADES: Trade,
    Topic.WALLET_BALANCES: WalletBalance,
    Topic.PRICES: Price,
}


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
        if topic is Topic.LEDGER:
            entry: LedgerEvent = _LEDGER.validate_python(document)
            return entry
        return _MODELS[topic].model_validate(document)  # type: ignore[return-value]
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        location = list(first["loc"])
        if topic is Topic.LEDGER:
            # the discriminated union puts the tag first; the tag itself is the field "type"
            location = location[1:] if location else ["type"]
        field = ".".join(str(part) for part in location) or "value"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidEvent(field, message) from None


def decode(topic: Topic, key: bytes | None, value: bytes) -> Event:
    """Decode and validate one input record; the key must agree with the value."""
    key_text = None
    if key is not None:
        try:
            key_text = key.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("key", "not UTF-8") from None
    return decode_document(topic, key_text, parse_json(value))


def decode_document(topic: Topic, key: str | None, document: Any) -> Event:
    """Validate an already parsed record value; the key must agree with the value."""
    if not isinstance(document, dict):
        raise InvalidEvent("value", f"must be a JSON object, not {_json_kind(document)}")
    event = validate(topic, document)
    if key is not None:
        owner = event.asset if isinstance(event, Price) else event.exchange
        if key != owner:
            expected = "asset" if isinstance(event, Price) else "exchange"
            raise InvalidEvent("key", f"{key!r} does not match the {expected} {owner!r}")
    return event


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


def to_document(event: Event) -> dict[str, Any]:
    """The JSON-ready contract form of an event (decimals and times as strings)."""
    return event.model_dump(mode="json")


def from_document(topic: Topic, document: dict[str, Any]) -> Event:
    """Inverse of :func:`to_document` for state restored from a changelog."""
    return validate(topic, document)


def topic_of(event: Event) -> Topic:
    if isinstance(event, Trade):
        return Topic.TRADES
    if isinstance(event, WalletBalance):
        return Topic.WALLET_BALANCES
    if isinstance(event, Price):
        return Topic.PRICES
    return Topic.LEDGER
