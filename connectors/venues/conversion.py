"""Prices in the reporting currency for venues that quote none: the documented bridge pairs.

Binance lists (almost) no JPY pairs, so its prices reach JPY through USDT, and
USDT/JPY is implied by one asset both venues quote, bitcoin:

    USDT/JPY = BTC/JPY on bitFlyer / BTC/USDT on Binance
    X/JPY    = X/USDT on Binance * USDT/JPY

Venues with a pair in the reporting currency (bitFlyer's BTC/JPY, ETH/JPY)
need no bridge. Pure: no ccxt, no I/O.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

# A quotient rarely ends: rounded once, half-even, to 28 significant digits (Decimal's default)
_ROUNDED = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)
_EXACT = decimal.Context(prec=200, traps=[decimal.Inexact])


@dataclass(frozen=True, slots=True)
class Bridge:
    """How a venue's quote currency (``quote``) is valued in the reporting currency."""

    quote: str  # what the venue quotes assets in, e.g. USDT
    venue_market: str  # a market on the venue pricing the common asset in `quote`, e.g. BTC/USDT
    reference_venue: str  # a venue quoting the common asset in the reporting currency
    reference_market: str  # that market, e.g. BTC/JPY

    def describe(self) -> str:
        return (
            f"{self.quote} valued as {self.reference_market} on {self.reference_venue} "
            f"/ {self.venue_market}"
        )


# (venue, reporting currency) → its bridge
BRIDGES: dict[tuple[str, str], Bridge] = {
    ("binance", "JPY"): Bridge("USDT", "BTC/USDT", "bitflyer", "BTC/JPY"),
}


def bridged_price(in_quote: Decimal, venue_bridge: Decimal, reference: Decimal) -> Decimal:
    """``in_quote`` (a price in the bridge's quote) in the reporting currency.

    ``in_quote * reference / venue_bridge``, rounded once. Raises `ValueError`
    when the bridge price is not positive.
    """
    if venue_bridge <= 0:
        raise ValueError(f"the bridge price must be positive, not {venue_bridge}")
    return _ROUNDED.divide(_EXACT.multiply(in_quote, reference), venue_bridge)
