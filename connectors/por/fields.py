"""The values of proof-of-reserves files, read strictly: text, assets, amounts.

Each reader raises ValueError with a message that a parser places at its line
and column. Amounts are exact: digits become a ``Decimal`` or an ``int``, never
a float, and a sign, an exponent or a thousands separator is refused rather
than guessed at.
"""

from __future__ import annotations

import re
from decimal import Decimal

from connectors.por.problems import Problems
from monitor.core.events import SYMBOL_PATTERN

_SYMBOL = re.compile(SYMBOL_PATTERN.removesuffix("$") + r"\Z")
_SYMBOL_MAX = 32  # the contract's asset symbols (monitor.core.events.Symbol)
_WHOLE = re.compile(r"[0-9]+\Z")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?\Z")
_NEGATIVE = re.compile(r"-[0-9]+(\.[0-9]+)?\Z")


def read_text(data: bytes) -> str:
    """The file's text: UTF-8 (a byte-order mark is dropped); refuses empty files."""
    if not data.strip():
        raise Problems.whole_file("the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problems.whole_file(f"not UTF-8 text (byte {error.start})") from None
    return text.removeprefix("\ufeff")


def asset_symbol(text: str) -> str:
    """An asset symbol as the contract spells it (``BTC``, ``USDT``), upper-cased."""
    symbol = text.strip().upper()
    if not symbol:
        raise ValueError("the asset is missing")
    if len(symbol) > _SYMBOL_MAX or not _SYMBOL.match(symbol):
        raise ValueError(
            f"{text!r} is not an asset symbol: letters, digits, '.', '_' or '-', "
            f"at most {_SYMBOL_MAX} characters"
        )
    return symbol


def whole_number(text: str) -> int:
    """A non-negative integer written in ASCII digits (a scaled or base-unit amount)."""
    value = text.strip()
    if _WHOLE.match(value):
        return int(value)
    raise ValueError(_refusal(text, "a whole number (e.g. 1250000)"))


def decimal_amount(text: str) -> Decimal:
    """A non-negative decimal number written in ASCII digits (``0.00047828``)."""
    value = text.strip()
    if _DECIMAL.match(value):
        return Decimal(value)
    raise ValueError(_refusal(text, 'a decimal number (e.g. "4502.9")'))


def _refusal(text: str, wanted: str) -> str:
    value = text.strip()
    if not value:
        return f"the amount is missing; write 0 for nothing, as {wanted}"
    if _NEGATIVE.match(value):
        return f"{value} is negative; a customer balance cannot be"
    return f"{text!r} is not {wanted}"
