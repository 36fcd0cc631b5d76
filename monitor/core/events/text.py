"""The contract's text made exact: amounts and timestamps (CONTRACT section 3).

Every event field that holds an amount or a time is decoded as the JSON gave it and
converted here, by the events' ``__post_init__`` (:mod:`monitor.core.events`). Each
function raises ValueError with a message saying what is wrong; the field is named by
whoever calls it.

The common forms (an amount of ASCII digits, a time shaped ``2024-05-31T13:26:00Z`` or
``...00.123Z``) are recognised by cheap checks before the general ones; the checks are
held to the general ones by tests/unit/test_events_fast_paths.py. Compiled with mypyc
(``make compile``): every amount and time of every record passes through here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

# Amounts beyond these overflow the money arithmetic (or its rounding to cents) far
# from the edge, inside a running total; no real quantity, price or balance needs more.
MAX_INTEGER_DIGITS: Final = 24
MAX_DECIMAL_PLACES: Final = 30
# Event times outside these years would push the clock's arithmetic (a window back, the
# time elapsed forward) out of the range of datetime.
EARLIEST_EVENT_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME: Final = datetime(9000, 1, 1, tzinfo=UTC)
# Decimal() also reads "1_000" and non-ASCII digits; the contract's amount strings are ASCII
AMOUNT_TEXT: Final = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# fromisoformat also takes basic forms ("20240531T132600Z") and times without seconds
RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def to_decimal(value: Any) -> Decimal:
    if type(value) is str and value.isascii():
        # digits, or digits, a point and digits (what AMOUNT_TEXT takes without an
        # exponent; str.isdigit() of ASCII text is [0-9]): only the range is left to check
        whole, point, fraction = value.partition(".")
        if whole.isdigit() and (not point or fraction.isdigit()):
            number = Decimal(value)
            if number.adjusted() < MAX_INTEGER_DIGITS and len(fraction) <= MAX_DECIMAL_PLACES:
                return number
    return to_decimal_checked(value)


def to_decimal_checked(value: Any) -> Decimal:
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
    if isinstance(value, str) and not AMOUNT_TEXT.fullmatch(value.strip()):
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
    if type(value) is str and (is_plain_utc(value) or RFC3339.fullmatch(value)):
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


def is_plain_utc(text: str) -> bool:
    """``2024-05-31T13:26:00Z`` or ``2024-05-31T13:26:00.123Z`` by its punctuation: the
    commonest forms (a trade feed's times carry milliseconds), checked quicker than by
    the regex. The fraction's digits are checked to be ASCII here; the digits before are
    left to ``fromisoformat``, which refuses anything but ASCII digits there
    (tests/unit/test_events_fast_paths.py)."""
    end = len(text) - 1
    if end < 19 or text[end] != "Z":
        return False
    if not (text[10] == "T" and text[4] == text[7] == "-" and text[13] == text[16] == ":"):
        return False
    if end == 19:
        return True
    fraction = text[20:end]
    return text[19] == "." and fraction.isdigit() and fraction.isascii()


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
# steady stream repeat a recent one. Only whole seconds (``2024-05-31T13:26:00Z``) are
# kept: a time with a fraction is a trade's, seldom met twice, and keeping it would push
# the shared ones out. Bounded: emptied when full.
EVENT_TIMES: Final[dict[str, datetime]] = {}
EVENT_TIMES_KEPT: Final = 1024


def to_event_time(value: Any) -> datetime:
    remembered = type(value) is str and len(value) == 20  # a whole second's time, if any
    if remembered:
        moment = EVENT_TIMES.get(value)
        if moment is not None:
            return moment
    moment = parse_rfc3339(value)
    # the bounds are the first instants of their years, and the moment is in UTC
    if not EARLIEST_EVENT_TIME.year <= moment.year < LATEST_EVENT_TIME.year:
        raise ValueError(
            f"{value!r} is out of range: event times fall in the years "
            f"{EARLIEST_EVENT_TIME.year} to {LATEST_EVENT_TIME.year - 1}"
        )
    if remembered:
        if len(EVENT_TIMES) >= EVENT_TIMES_KEPT:
            EVENT_TIMES.clear()
        EVENT_TIMES[value] = moment
    return moment
