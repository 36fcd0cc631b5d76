"""``reserve-monitor feed trades``: a venue's trades as trade events, one per market and interval.

Trades come from ccxt.pro's ``watch_trades`` where the venue has a websocket
(Binance), from REST polls otherwise (bitFlyer). They are summed per interval
(`intervals.IntervalBook`) and an interval is published once it is closed:
when its end is ``settle`` behind a time up to which every trade is known.

- Streaming and healthy: known up to now (less ``settle``, for the venue's delay).
- After a websocket error, and on every poll of a REST venue: known up to the
  time a REST backfill after the last trade id started. Until a websocket batch
  arrives again (and its gap has been backfilled), each tick backfills first.
- A batch whose first id jumps past the last id counted (Binance's aggregate
  ids are consecutive per symbol) is a gap: backfilled at once.

Restarts: the feed keeps no state. It starts ``lookback`` before now, at an
interval boundary, and reads that span over REST, so the intervals the last
run may have left unpublished are published, whole. Those it did publish are
published again with the same ids and the same notional, duplicates that the
monitor ignores.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from connectors.sinks import EventSink, Outgoing, open_sink
from connectors.venues.client import (
    consecutive_ids,
    create_client,
    streams_trades,
    watch_params,
)
from connectors.venues.errors import VenueError, run_feed
from connectors.venues.events import trade_event
from connectors.venues.history import trades_after, trades_since, venue_trade
from connectors.venues.intervals import IntervalBook, VenueTrade, interval_start

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 10.0
# a trade reaches the websocket or REST within this of its time; intervals wait for it
DEFAULT_SETTLE_SECONDS = 2.0
DEFAULT_LOOKBACK_SECONDS = 60.0
# Binance's aggTrades by time answers at most one hour after its start
MAX_LOOKBACK_SECONDS = 3600.0
TICK_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 30.0


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class TradeFeed:
    """The trade volume of some markets of one venue, for one exchange."""

    def __init__(
        self,
        client: Any,
        *,
        exchange: str,
        markets: list[str],
        sink: EventSink,
        interval_ms: int = int(DEFAULT_INTERVAL_SECONDS * 1000),
        settle_ms: int = int(DEFAULT_SETTLE_SECONDS * 1000),
        lookback_ms: int = int(DEFAULT_LOOKBACK_SECONDS * 1000),
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if not markets:
            raise VenueError("name the markets to follow with --markets, e.g. BTC/JPY")
        if lookback_ms > MAX_LOOKBACK_SECONDS * 1000 - interval_ms:
            raise VenueError(
                f"the look-back is at most {MAX_LOOKBACK_SECONDS:g} s less an interval"
            )
        self.client = client
        self.venue: str = client.id
        self.exchange = exchange
        self.markets = markets
        self.sink = sink
        self.interval_ms = interval_ms
        self.settle_ms = settle_ms
        self.lookback_ms = lookback_ms
        self.clock = clock
        self.streaming = streams_trades(client)
        self.books: dict[str, IntervalBook] = {}
        self.currency: dict[str, str] = {}
        # markets whose websocket may have missed trades: REST first, before closing anything
        self.unsure: set[str] = set(markets)
        # per market, the id up to which every trade is counted: where a backfill resumes
        self.complete_id: dict[str, int] = {}
        self.consecutive = consecutive_ids(self.venue)
        # the websocket connections a market's last batch came over (ccxt's client.clients)
        self._connections: dict[str, list[Any]] = {}
        self.first_backoff_s = 1.0  # after a websocket error, doubling up to MAX_BACKOFF_SECONDS
        self.tick_s = TICK_SECONDS

    async def open(self) -> None:
        """Load the venue's markets, check ours, and read the look-back span over REST."""
        await self.client.load_markets()
        unknown = [m for m in self.markets if m not in self.client.markets]
        if unknown:
            raise VenueError(
                f"{self.venue} has no market {', '.join(unknown)} "
                "(ccxt's unified symbols, e.g. BTC/USDT)"
            )
        origin = interval_start(self.clock() - self.lookback_ms, self.interval_ms)
        for market in self.markets:
            self.currency[market] = self.client.markets[market]["quote"]
            self.books[market] = IntervalBook(market, self.interval_ms, origin)
            await self.backfill(market)

    async def backfill(self, market: str) -> int:
        """Read over REST every trade after the last one known complete; return how many were new.

        REST answers up to the present, so afterwards every trade up to the
        newest it returned is known: that id is where the next backfill resumes.
        """
        book = self.books[market]
        complete = self.complete_id.get(market)
        if complete is None:
            found = await trades_since(self.client, market, book.closed_until_ms)
        else:
            found = await trades_after(self.client, market, complete)
        if found:
            self.complete_id[market] = max(complete or found[-1].id, found[-1].id)
        return self._count(book, found)

    async def receive(self, market: str) -> int:
        """Take one websocket batch of ``market``; backfill the gap before it, if any."""
        batch = await self.client.watch_trades(market, params=watch_params(self.venue))
        trades = sorted((venue_trade(t) for t in batch), key=lambda t: t.id)
        complete = self.complete_id.get(market)
        fresh = [t for t in trades if complete is None or t.id > complete]
        if fresh and complete is not None and self.consecutive and fresh[0].id > complete + 1:
            # a gap: nothing of this market closes until the backfill has filled it
            self.unsure.add(market)
            log.warning("%s %s: trade ids jump past %s", self.venue, market, complete)
        new = self._count(self.books[market], trades)
        self._connections[market] = self._open_connections()
        if market in self.unsure:
            new += await self.backfill(market)
            self.unsure.discard(market)
        elif fresh:
            self.complete_id[market] = fresh[-1].id
        return new

    def _open_connections(self) -> list[Any]:
        return list((getattr(self.client, "clients", None) or {}).values())

    def _stream_intact(self, market: str) -> bool:
        """Whether the connections of the market's last batch are all still up.

        ccxt drops a connection the server closed and dials a new one at the
        next watch without an error when no watch was waiting at that moment;
        trades in between would be missed without this check.
        """
        current = self._open_connections()
        seen = self._connections.get(market, [])
        return all(any(c is s for c in current) for s in seen)

    async def publish_closed(self) -> list[Outgoing]:
        """Publish every interval known to be complete; return the events sent."""
        published: list[Outgoing] = []
        for market in self.markets:
            known_until = self.clock()
            if self.streaming and market not in self.unsure and not self._stream_intact(market):
                log.warning("%s %s: websocket reconnected; backfilling", self.venue, market)
                self.unsure.add(market)
            if not self.streaming or market in self.unsure:
                await self.backfill(market)
            events = [
                trade_event(self.venue, self.exchange, volume, self.currency[market])
                for volume in self.books[market].close(known_until - self.settle_ms)
                if volume.trades
            ]
            if events:
                # sent per market, so one market's failed backfill holds back no other's
                await self.sink.send(events)
                published += events
        return published

    def _count(self, book: IntervalBook, trades: list[VenueTrade]) -> int:
        late_before = book.late
        new = book.add(trades)
        if book.late > late_before:
            log.warning(
                "%s %s: %d trades arrived after their interval was published; left out "
                "(raise the settle time)",
                self.venue,
                book.market,
                book.late - late_before,
            )
        return new

    async def follow(self, market: str) -> None:
        """Receive websocket batches for ever; on an error, mark the market unsure and reconnect."""
        backoff = self.first_backoff_s
        while True:
            try:
                await self.receive(market)
                backoff = self.first_backoff_s
            except Exception as error:  # ccxt raises NetworkError and others on a drop
                if not _is_network_error(error):
                    raise
                self.unsure.add(market)
                log.warning("%s %s: websocket lost (%s); reconnecting", self.venue, market, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def run(self) -> None:
        """Open, follow the markets, publish closed intervals every tick; until cancelled."""
        await self.open()
        log.info(
            "%s %s: %s, %g s intervals, for exchange %s",
            self.venue,
            " ".join(self.markets),
            "websocket, REST to backfill" if self.streaming else "REST polls",
            self.interval_ms / 1000,
            self.exchange,
        )
        followers = (
            [asyncio.create_task(self.follow(m)) for m in self.markets] if self.streaming else []
        )
        try:
            while True:
                for follower in followers:
                    if follower.done():
                        follower.result()  # a follower's error ends the feed
                try:
                    await self.publish_closed()
                except Exception as error:
                    if not _is_network_error(error):
                        raise
                    # nothing closed this tick: the next one backfills and closes it all
                    log.warning("%s: REST backfill failed (%s); retrying", self.venue, error)
                await asyncio.sleep(self.tick_s)
        finally:
            for follower in followers:
                follower.cancel()


def _is_network_error(error: Exception) -> bool:
    import ccxt  # type: ignore[import-untyped]  # no type information

    return isinstance(error, ccxt.NetworkError)


def _seconds(args: argparse.Namespace, name: str, default: float) -> int:
    # --interval and --lookback: proposed for connectors/commands.py; defaults until they exist
    value = getattr(args, name, None)
    seconds = default if value is None else float(value)
    if seconds <= 0:
        raise VenueError(f"--{name} must be positive")
    return int(seconds * 1000)


async def _run(args: argparse.Namespace) -> int:
    client = create_client(args.venue, streaming=True)
    sink = await open_sink(args.jsonl, f"reserve-monitor-feed-trades-{args.venue}")
    try:
        feed = TradeFeed(
            client,
            exchange=args.exchange,
            markets=list(args.markets or []),
            sink=sink,
            interval_ms=_seconds(args, "interval", DEFAULT_INTERVAL_SECONDS),
            lookback_ms=_seconds(args, "lookback", DEFAULT_LOOKBACK_SECONDS),
        )
        await feed.run()
    finally:
        await client.close()
        await sink.close()
    return 0


def run(args: argparse.Namespace) -> int:
    """Follow the venue's trades until interrupted; exit 1 with one line on bad input."""
    return run_feed("feed trades", _run(args))
