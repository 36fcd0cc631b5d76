"""``reserve-monitor feed prices``: a venue's tickers as price events in the reporting currency.

Each poll reads the ticker of every market it needs over REST (``fetch_ticker``)
and publishes, per asset, the ticker's last trade price. Where the venue quotes
the asset in the reporting currency (bitFlyer's BTC/JPY) that is the price;
otherwise it goes through the venue's bridge (`conversion.BRIDGES`), e.g. Binance's
X/USDT * (bitFlyer's BTC/JPY / Binance's BTC/USDT). The bridge's quote currency
itself (USDT) can be asked for too: the monitor needs its price to value trades
quoted in it.

An event is dated at the newest ticker it was computed from, and its id comes
from (venue, asset, that time): a poll that finds no newer ticker publishes
nothing new.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.sinks import EventSink, Outgoing, open_sink
from connectors.venues.client import create_client
from connectors.venues.conversion import BRIDGES, Bridge, bridged_price
from connectors.venues.errors import VenueError, run_feed
from connectors.venues.events import price_event

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Ticker:
    """What a price is made of: a last trade price and the venue's time of it (ms)."""

    last: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class _Plan:
    asset: str
    market: str | None  # on the venue: ASSET/<reporting> directly, or ASSET/<bridge quote>
    bridged: bool


class PriceFeed:
    """Prices of some assets from one venue, in the reporting currency."""

    def __init__(
        self,
        client: Any,
        *,
        assets: list[str],
        currency: str,
        sink: EventSink,
        reference_client: Any | None = None,
    ) -> None:
        self.client = client
        self.venue: str = client.id
        self.assets = assets
        self.currency = currency
        self.sink = sink
        self.bridge: Bridge | None = BRIDGES.get((self.venue, currency))
        self.reference_client = reference_client
        self.plans: list[_Plan] = []
        self._published: dict[str, str] = {}  # asset → id of its last event

    @property
    def needs_reference(self) -> bool:
        return any(plan.bridged for plan in self.plans)

    async def open(self) -> None:
        """Load the markets and choose, per asset, its direct pair or the bridge."""
        await self.client.load_markets()
        markets = self.client.markets
        errors = []
        for asset in self.assets:
            direct = f"{asset}/{self.currency}"
            if asset == self.currency:
                errors.append(f"{asset} is the reporting currency")
            elif direct in markets:
                self.plans.append(_Plan(asset, direct, bridged=False))
            elif self.bridge is not None and asset == self.bridge.quote:
                self.plans.append(_Plan(asset, None, bridged=True))
            elif self.bridge is not None and f"{asset}/{self.bridge.quote}" in markets:
                self.plans.append(_Plan(asset, f"{asset}/{self.bridge.quote}", bridged=True))
            else:
                via = f" or {asset}/{self.bridge.quote}" if self.bridge else ""
                errors.append(f"{self.venue} has no {direct}{via}")
        if errors:
            raise VenueError("; ".join(errors))
        if self.needs_reference:
            assert self.bridge is not None
            if self.reference_client is None:
                raise VenueError(f"{self.venue}'s prices need {self.bridge.reference_venue}")
            if self.bridge.venue_market not in markets:
                raise VenueError(f"{self.venue} has no {self.bridge.venue_market}")
            await self.reference_client.load_markets()
            if self.bridge.reference_market not in self.reference_client.markets:
                raise VenueError(
                    f"{self.bridge.reference_venue} has no {self.bridge.reference_market}"
                )

    async def poll(self) -> list[Outgoing]:
        """Read the tickers, publish the prices that are new; return the events sent."""
        tickers: dict[str, Ticker] = {}
        for plan in self.plans:
            if plan.market is not None and plan.market not in tickers:
                tickers[plan.market] = await _ticker(self.client, plan.market)
        bridge_ticker = reference_ticker = None
        if self.needs_reference:
            assert self.bridge is not None and self.reference_client is not None
            bridge_ticker = await _ticker(self.client, self.bridge.venue_market)
            reference_ticker = await _ticker(self.reference_client, self.bridge.reference_market)
        events = []
        for plan in self.plans:
            used = [tickers[plan.market]] if plan.market is not None else []
            price = used[0].last if used else Decimal(1)  # the bridge's quote, in itself
            if plan.bridged:
                assert bridge_ticker is not None and reference_ticker is not None
                used += [bridge_ticker, reference_ticker]
                price = bridged_price(price, bridge_ticker.last, reference_ticker.last)
            ts_ms = max(ticker.ts_ms for ticker in used)
            event = price_event(self.venue, plan.asset, ts_ms, price, self.currency)
            if self._published.get(plan.asset) != event.value["event_id"]:
                events.append(event)
                self._published[plan.asset] = event.value["event_id"]
        if events:
            await self.sink.send(events)
        return events

    def describe(self) -> str:
        """One line per asset saying where its price comes from (logged at start)."""
        lines = []
        for plan in self.plans:
            if not plan.bridged:
                lines.append(f"{plan.asset}: {plan.market} on {self.venue}")
            else:
                assert self.bridge is not None
                source = f"{plan.market} on {self.venue} * " if plan.market else ""
                lines.append(f"{plan.asset}: {source}{self.bridge.describe()}")
        return "; ".join(lines)


async def _ticker(client: Any, market: str) -> Ticker:
    ticker = await client.fetch_ticker(market)
    last, ts_ms = ticker.get("last"), ticker.get("timestamp")
    if not isinstance(last, Decimal) or ts_ms is None:
        raise VenueError(f"{client.id} {market}: the ticker has no last price or no time")
    return Ticker(last, int(ts_ms))


def reporting_currency() -> str:
    return os.environ.get("RESERVE_MONITOR_REPORTING_CURRENCY", "JPY")


async def _run(args: argparse.Namespace) -> int:
    client = create_client(args.venue, streaming=False)
    currency = reporting_currency()
    bridge = BRIDGES.get((args.venue, currency))
    reference = create_client(bridge.reference_venue, streaming=False) if bridge else None
    sink = await open_sink(args.jsonl, f"reserve-monitor-feed-prices-{args.venue}")
    every = getattr(args, "interval", None) or DEFAULT_POLL_SECONDS
    try:
        feed = PriceFeed(
            client,
            assets=list(args.assets),
            currency=currency,
            sink=sink,
            reference_client=reference,
        )
        await feed.open()
        log.info("prices from %s", feed.describe())
        while True:
            try:
                await feed.poll()
            except Exception as error:
                import ccxt  # type: ignore[import-untyped]  # no type information

                if not isinstance(error, ccxt.NetworkError):
                    raise
                log.warning("%s: tickers unavailable (%s); retrying", args.venue, error)
            await asyncio.sleep(float(every))
    finally:
        await client.close()
        if reference is not None:
            await reference.close()
        await sink.close()


def run(args: argparse.Namespace) -> int:
    """Poll the venue's tickers until interrupted; exit 1 with one line on bad input."""
    return run_feed("feed prices", _run(args))
