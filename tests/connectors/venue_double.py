"""A local stand-in for Binance and bitFlyer: their REST and websocket shapes, served by aiohttp.

The tests point the real ccxt client at it (``RESERVE_MONITOR_VENUE_API_<VENUE>``),
so everything between ccxt's HTTP and websocket calls and our code runs for real.
Each response is built from a shape recorded from the venue's public API docs
(``venue_shapes/*.json``, each naming its source), with the tape's values put in.

The double keeps a tape of trades per venue and market. A test appends trades
(``trade``), which go out at once to the websocket subscribers of that market,
drops the websockets (``drop_streams``) to make a gap, and sets tickers.
Everything the double ever served is on the tape, so a test can compare what
the feed published with the sum of all trades.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

SHAPES = Path(__file__).parent / "venue_shapes"


@functools.cache
def _recorded(name: str) -> Any:
    return json.loads((SHAPES / f"{name}.json").read_text())


def shape(name: str) -> Any:
    """The recorded shape in ``venue_shapes/<name>.json`` (a copy: the caller fills it in)."""
    return copy.deepcopy(_recorded(name)["shape"])


@dataclass(frozen=True)
class TapeTrade:
    """One trade the double served: its venue id, time (ms), price and amount."""

    id: int
    ts_ms: int
    price: Decimal
    amount: Decimal

    @property
    def notional(self) -> Decimal:
        return self.price * self.amount


def _bitflyer_time(ms: int) -> str:
    # bitFlyer writes UTC without an offset and with milliseconds: "2015-07-08T02:43:34.823"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _json_number(value: Decimal) -> float:
    # bitFlyer sends JSON numbers; the shortest float repr reads back as the same decimal text
    number = float(value)
    assert Decimal(repr(number)) == value, f"{value} is not a JSON number bitFlyer would send"
    return number


class VenueDouble:
    """Binance under ``/binance`` and bitFlyer under ``/bitflyer`` of one local server."""

    def __init__(self) -> None:
        self.tape: dict[tuple[str, str], list[TapeTrade]] = defaultdict(list)
        self._binance_ids: dict[str, int] = defaultdict(lambda: 1000)
        self._bitflyer_id = 5000  # bitFlyer's execution ids run across all products
        self._tickers: dict[tuple[str, str], tuple[Decimal, int]] = {}
        self._subscribers: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._subscribed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._sockets: set[web.WebSocketResponse] = set()
        self._streams_open = asyncio.Event()
        self._streams_open.set()
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- the test's side -----------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/binance/api/v3/exchangeInfo", self._binance_exchange_info)
        app.router.add_get("/binance/api/v3/aggTrades", self._binance_agg_trades)
        app.router.add_get("/binance/api/v3/ticker/24hr", self._binance_ticker)
        app.router.add_get("/binance/ws/{stream}", self._binance_stream)
        app.router.add_get("/bitflyer/v1/getmarkets", self._bitflyer_markets("jp"))
        app.router.add_get("/bitflyer/v1/getmarkets/usa", self._bitflyer_markets("usa"))
        app.router.add_get("/bitflyer/v1/getmarkets/eu", self._bitflyer_markets("eu"))
        app.router.add_get("/bitflyer/v1/getexecutions", self._bitflyer_executions)
        app.router.add_get("/bitflyer/v1/getticker", self._bitflyer_ticker)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.resume_streams()
        await self.drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, venue: str) -> str:
        """The base URL to give the feed for ``venue``."""
        return f"{self.base_url}/{venue}"

    async def trade(self, venue: str, market_id: str, price: str, amount: str, ts_ms: int) -> int:
        """Append a trade to the tape, stream it to subscribers; return its id."""
        if venue == "binance":
            self._binance_ids[market_id] += 1
            trade_id = self._binance_ids[market_id]
        else:
            self._bitflyer_id += 1
            trade_id = self._bitflyer_id
        trade = TapeTrade(trade_id, ts_ms, Decimal(price), Decimal(amount))
        self.tape[venue, market_id].append(trade)
        if venue == "binance":
            await self._stream_binance(market_id, trade)
        return trade_id

    def resume_streams(self) -> None:
        self._streams_open.set()

    def set_ticker(self, venue: str, market_id: str, last: str, ts_ms: int) -> None:
        self._tickers[venue, market_id] = (Decimal(last), ts_ms)

    async def subscribed(self, market_id: str) -> None:
        """Return once a websocket is subscribed to ``market_id``'s aggregate trades."""
        await self._subscribed[f"{market_id.lower()}@aggTrade"].wait()

    async def drop_streams(self, *, hold: bool = False) -> None:
        """Close every websocket from the server's side, as a venue restart would.

        With ``hold``, new subscriptions wait for `resume_streams`: trades made
        meanwhile reach no websocket, only REST, as in a real outage.
        """
        if hold:
            self._streams_open.clear()
        for event in self._subscribed.values():
            event.clear()
        for subscribers in self._subscribers.values():
            subscribers.clear()
        sockets, self._sockets = self._sockets, set()
        for socket in sockets:
            await socket.close()

    def notional_by_interval(
        self, venue: str, market_id: str, interval_ms: int, *, from_ms: int = 0
    ) -> dict[int, Decimal]:
        """Σ price * amount of every trade on the tape, per interval start, from ``from_ms``."""
        totals: dict[int, Decimal] = defaultdict(Decimal)
        for trade in self.tape[venue, market_id]:
            if trade.ts_ms >= from_ms:
                totals[trade.ts_ms - trade.ts_ms % interval_ms] += trade.notional
        return dict(totals)

    # -- Binance -------------------------------------------------------------------

    async def _binance_exchange_info(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        return web.json_response(shape("binance_exchange_info"))

    def _binance_agg_trade(self, trade: TapeTrade) -> dict[str, Any]:
        recorded: dict[str, Any] = shape("binance_agg_trades")
        return recorded | {
            "a": trade.id,
            "p": f"{trade.price:f}",
            "q": f"{trade.amount:f}",
            "f": trade.id,
            "l": trade.id,
            "T": trade.ts_ms,
        }

    async def _binance_agg_trades(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        query = request.query
        trades = self.tape["binance", query["symbol"]]
        limit = int(query.get("limit", 500))
        if "fromId" in query:
            chosen = [t for t in trades if t.id >= int(query["fromId"])][:limit]
        elif "startTime" in query:
            start, end = int(query["startTime"]), int(query.get("endTime", 2**62))
            chosen = [t for t in trades if start <= t.ts_ms <= end][:limit]
        else:
            chosen = trades[-limit:]
        return web.json_response([self._binance_agg_trade(t) for t in chosen])

    async def _binance_ticker(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        symbol = request.query["symbol"]
        if ("binance", symbol) not in self._tickers:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        last, ts_ms = self._tickers["binance", symbol]
        body = shape("binance_ticker_24hr") | {
            "symbol": symbol,
            "lastPrice": f"{last:f}",
            "closeTime": ts_ms,
            "openTime": ts_ms - 86_400_000,
        }
        return web.json_response(body)

    async def _binance_stream(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.add(socket)
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            command = json.loads(message.data)
            if command.get("method") == "SUBSCRIBE":
                await self._streams_open.wait()
                await socket.send_json(
                    shape_of("binance_agg_trade_stream", "subscribed") | {"id": command["id"]}
                )
                for stream in command["params"]:
                    self._subscribers[stream].add(socket)
                    self._subscribed[stream].set()
        self._sockets.discard(socket)
        return socket

    async def _stream_binance(self, market_id: str, trade: TapeTrade) -> None:
        message = self._binance_agg_trade(trade) | {
            "e": "aggTrade",
            "E": trade.ts_ms,
            "s": market_id,
        }
        message = shape("binance_agg_trade_stream") | message
        for socket in list(self._subscribers[f"{market_id.lower()}@aggTrade"]):
            if not socket.closed:
                await socket.send_json(message)

    # -- bitFlyer ------------------------------------------------------------------

    def _bitflyer_markets(self, region: str) -> Any:
        async def markets(request: web.Request) -> web.Response:
            self.requests.append(request.path_qs)
            return web.json_response(shape("bitflyer_markets")[region])

        return markets

    async def _bitflyer_executions(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        query = request.query
        trades = self.tape["bitflyer", query["product_code"]]
        after = int(query.get("after", -1))
        before = int(query.get("before", 2**62))
        count = int(query.get("count", 100))
        chosen = [t for t in trades if after < t.id < before][::-1][:count]  # newest first
        body = [
            shape("bitflyer_executions")
            | {
                "id": t.id,
                "price": _json_number(t.price),
                "size": _json_number(t.amount),
                "exec_date": _bitflyer_time(t.ts_ms),
            }
            for t in chosen
        ]
        return web.json_response(body)

    async def _bitflyer_ticker(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        product = request.query["product_code"]
        if ("bitflyer", product) not in self._tickers:
            return web.json_response(
                {"status": -120, "error_message": "Invalid product"}, status=400
            )
        last, ts_ms = self._tickers["bitflyer", product]
        body = shape("bitflyer_ticker") | {
            "product_code": product,
            "ltp": _json_number(last),
            "timestamp": _bitflyer_time(ts_ms),
        }
        return web.json_response(body)


def shape_of(name: str, part: str) -> Any:
    """Another recorded part of ``venue_shapes/<name>.json`` (e.g. a subscribe answer)."""
    return copy.deepcopy(_recorded(name)[part])
