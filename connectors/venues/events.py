"""The contract's trade and price events (CONTRACT section 3) built from what the venues report.

Ids are deterministic, so whatever is published twice (after a restart, or a
backfill that re-reads a closed interval) is the same event, and the monitor
takes the second copy as a duplicate:

- trade: ``<venue>:<market>:<interval start>``, e.g. ``binance:BTC/USDT:2024-05-31T13:26:00Z``;
- price: ``<venue>:<asset>:<ticker time>``, e.g. ``bitflyer:BTC:2024-05-31T13:26:00.250Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.sinks import Outgoing
from connectors.venues.intervals import IntervalVolume


def rfc3339(ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 UTC, with milliseconds only when there are any."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def decimal_text(value: Decimal) -> str:
    """A decimal as the contract writes amounts: plain digits, no exponent, no trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def trade_event(venue: str, exchange: str, volume: IntervalVolume, currency: str) -> Outgoing:
    """The trade event of one closed interval, dated at its end (when its volume is complete)."""
    value: dict[str, Any] = {
        "event_id": f"{venue}:{volume.market}:{rfc3339(volume.start_ms)}",
        "exchange": exchange,
        "ts": rfc3339(volume.end_ms),
        "market": volume.market,
        "notional": decimal_text(volume.notional),
        "currency": currency,
    }
    return Outgoing("exchange.trades", exchange, value)


def price_event(venue: str, asset: str, ts_ms: int, price: Decimal, currency: str) -> Outgoing:
    """The price event of one asset, dated at the ticker time it was taken from."""
    value: dict[str, Any] = {
        "event_id": f"{venue}:{asset}:{rfc3339(ts_ms)}",
        "asset": asset,
        "ts": rfc3339(ts_ms),
        "price": decimal_text(price),
        "currency": currency,
    }
    return Outgoing("market.prices", asset, value)
