"""Past trades over REST, by trade id or from a time: how each venue pages its history.

Backfill reads "every trade after the last id counted" (after a websocket gap,
and on every poll of a venue without websockets) or "every trade from this
time" (at start, when no id is known yet). Both read up to the present; pages
overlap what the websocket already delivered, and the interval book drops the
trades it has by id.

- Binance: ``GET /api/v3/aggTrades`` (``fetchTradesMethod=publicGetAggTrades``),
  public, ascending; ``fromId`` for ids (inclusive), ``startTime`` for a time
  (ccxt adds ``endTime`` = start + 1 h, so the look-back is at most an hour).
  The websocket's ``<symbol>@aggTrade`` stream carries the same ids, which are
  consecutive per symbol, so a jump in them is a gap.
- bitFlyer: ``GET /v1/getexecutions``, newest first, at most 500 a page;
  ``after`` (exclusive) for ids, then ``before`` the oldest id of each full page.
  From a time: pages back with ``before`` until a page reaches past it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from connectors.venues.intervals import VenueTrade

BINANCE_PAGE = 1000
BITFLYER_PAGE = 500
# a runaway guard: a backfill that needs more pages than this is too far behind to be live
MAX_PAGES = 1000


def venue_trade(trade: dict[str, Any]) -> VenueTrade:
    """ccxt's unified trade as a `VenueTrade`; its price and amount must already be exact."""
    price, amount = trade["price"], trade["amount"]
    if not isinstance(price, Decimal) or not isinstance(amount, Decimal):
        raise TypeError("ccxt must be created with number=Decimal (see connectors.venues.client)")
    return VenueTrade(int(trade["id"]), int(trade["timestamp"]), price, amount)


async def trades_after(client: Any, symbol: str, last_id: int) -> list[VenueTrade]:
    """Every trade of ``symbol`` with an id above ``last_id``, up to now, oldest first."""
    if client.id == "binance":
        return await _binance_from_id(client, symbol, last_id + 1)
    if client.id == "bitflyer":
        return await _bitflyer_pages(client, symbol, {"after": last_id}, since_ms=None)
    raise ValueError(f"no trade history for venue {client.id!r}")


async def trades_since(client: Any, symbol: str, since_ms: int) -> list[VenueTrade]:
    """Every trade of ``symbol`` at or after ``since_ms``, up to now, oldest first."""
    if client.id == "binance":
        page = await client.fetch_trades(
            symbol, since_ms, BINANCE_PAGE, {"fetchTradesMethod": "publicGetAggTrades"}
        )
        trades = [venue_trade(t) for t in page]
        if len(page) == BINANCE_PAGE:
            trades += await _binance_from_id(client, symbol, trades[-1].id + 1)
        return trades
    if client.id == "bitflyer":
        return await _bitflyer_pages(client, symbol, {}, since_ms=since_ms)
    raise ValueError(f"no trade history for venue {client.id!r}")


async def _binance_from_id(client: Any, symbol: str, from_id: int) -> list[VenueTrade]:
    trades: list[VenueTrade] = []
    for _ in range(MAX_PAGES):
        params = {"fetchTradesMethod": "publicGetAggTrades", "fromId": from_id}
        page = await client.fetch_trades(symbol, None, BINANCE_PAGE, params)
        trades += [venue_trade(t) for t in page]
        if len(page) < BINANCE_PAGE:
            return trades
        from_id = trades[-1].id + 1
    raise RuntimeError(f"binance {symbol}: more than {MAX_PAGES} pages to backfill")


async def _bitflyer_pages(
    client: Any, symbol: str, bounds: dict[str, int], since_ms: int | None
) -> list[VenueTrade]:
    trades: list[VenueTrade] = []
    params = dict(bounds)
    for _ in range(MAX_PAGES):
        page: Sequence[dict[str, Any]] = await client.fetch_trades(
            symbol, None, BITFLYER_PAGE, params
        )
        found = [venue_trade(t) for t in page]
        trades += found
        if len(page) < BITFLYER_PAGE:
            break
        oldest = min(found, key=lambda t: t.id)
        if since_ms is not None and oldest.ts_ms < since_ms:
            break
        params = dict(bounds, before=oldest.id)
    else:
        raise RuntimeError(f"bitflyer {symbol}: more than {MAX_PAGES} pages to backfill")
    trades.sort(key=lambda t: t.id)
    if since_ms is not None:
        trades = [t for t in trades if t.ts_ms >= since_ms]
    return trades
