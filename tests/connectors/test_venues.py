"""``feed trades`` and ``feed prices`` against the local venue double, with the real ccxt client.

The pure aggregation is tested on its own (with hypothesis); everything else
runs ccxt's REST and websocket code against `VenueDouble`, which serves the
venues' recorded shapes on 127.0.0.1. Time is a manual clock: the tests say
when "now" is, so no assertion depends on how fast anything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sinks import JsonLinesSink, Outgoing
from connectors.venues import prices as prices_command
from connectors.venues import trades as trades_command
from connectors.venues.client import create_client
from connectors.venues.conversion import bridged_price
from connectors.venues.events import decimal_text, rfc3339, trade_event
from connectors.venues.history import venue_trade
from connectors.venues.intervals import IntervalBook, IntervalVolume, VenueTrade
from connectors.venues.prices import PriceFeed
from connectors.venues.trades import TradeFeed
from monitor.core.events import Topic, decode
from tests.connectors.venue_double import VenueDouble

INTERVAL = 10_000  # ms
SETTLE = 2_000
T0 = 1_717_161_960_000  # 2024-05-31T13:26:00Z, an interval boundary


class Clock:
    """The feed's "now", moved by the test."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


# -- the pure aggregation ---------------------------------------------------------------


def _trade(trade_id: int, ts_ms: int, price: str, amount: str) -> VenueTrade:
    return VenueTrade(trade_id, ts_ms, Decimal(price), Decimal(amount))


def _brute_force(trades: list[VenueTrade], length: int) -> dict[int, Decimal]:
    unique = {t.id: t for t in trades}.values()
    totals: dict[int, Decimal] = {}
    for t in unique:
        start = t.ts_ms - t.ts_ms % length
        totals[start] = totals.get(start, Decimal(0)) + t.price * t.amount
    return totals


def test_an_interval_sums_exactly_in_decimal() -> None:
    book = IntervalBook("BTC/JPY", INTERVAL, T0)
    book.add([_trade(1, T0 + 1, "0.1", "1"), _trade(2, T0 + 2, "0.1", "1")])
    book.add([_trade(3, T0 + 3, "0.1", "1")])
    [volume] = book.close(T0 + INTERVAL)
    assert volume.notional == Decimal("0.3")  # 0.1 + 0.1 + 0.1 in floats is 0.30000000000000004
    assert decimal_text(volume.notional) == "0.3"
    assert (volume.start_ms, volume.end_ms, volume.trades) == (T0, T0 + INTERVAL, 3)


def test_an_interval_closes_only_once_it_is_past() -> None:
    book = IntervalBook("BTC/JPY", INTERVAL, T0)
    book.add([_trade(1, T0 + 5_000, "2", "3")])
    assert book.close(T0 + INTERVAL - 1) == []
    assert [v.notional for v in book.close(T0 + INTERVAL)] == [Decimal(6)]
    assert book.close(T0 + 2 * INTERVAL) == []  # no trades: nothing to say
    book.add([_trade(1, T0 + 5_000, "2", "3")])  # delivered again after its interval closed
    assert book.late == 0
    assert book.close(T0 + 3 * INTERVAL) == []


def test_a_trade_after_its_interval_closed_is_counted_as_late() -> None:
    book = IntervalBook("BTC/JPY", INTERVAL, T0)
    book.add([_trade(1, T0 + 5_000, "2", "3")])
    book.close(T0 + INTERVAL)
    book.add([_trade(2, T0 + 6_000, "1", "1")])
    assert book.late == 1
    assert book.last_id == 2  # a backfill does not ask for it again


def test_trades_before_the_origin_are_not_the_feeds() -> None:
    book = IntervalBook("BTC/JPY", INTERVAL, T0)
    book.add([_trade(1, T0 - 1, "2", "3")])
    assert (book.last_id, book.late, book.close(T0 + INTERVAL)) == (None, 0, [])


def test_event_ids_come_from_venue_market_and_interval_start() -> None:
    volume = IntervalVolume("BTC/USDT", T0, T0 + INTERVAL, Decimal("12.5"), 3)
    first = trade_event("binance", "dmm", volume, "USDT")
    again = trade_event("binance", "dmm", volume, "USDT")
    assert first == again
    assert first.value == {
        "event_id": "binance:BTC/USDT:2024-05-31T13:26:00Z",
        "exchange": "dmm",
        "ts": "2024-05-31T13:26:10Z",
        "market": "BTC/USDT",
        "notional": "12.5",
        "currency": "USDT",
    }
    assert first.key == "dmm" and first.topic == "exchange.trades"
    assert rfc3339(T0 + 250) == "2024-05-31T13:26:00.250Z"


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[list[VenueTrade], list[tuple[list[VenueTrade], int]]]:
    """Trades (ids rising with time), delivered in batches with repeats, with closes between.

    A close never passes a trade not yet delivered: the feed's promise (it
    closes only up to where it has backfilled or streamed everything).
    """
    gaps = draw(st.lists(st.integers(0, 7_000), min_size=1, max_size=40))
    prices = st.sampled_from(["0.1", "0.3", "1", "2.5", "19999.99", "0.00000001"])
    amounts = st.sampled_from(["0.1", "1", "3", "0.12345678", "7"])
    trades, ts = [], T0
    for index, gap in enumerate(gaps):
        ts += gap
        trades.append(_trade(100 + index, ts, draw(prices), draw(amounts)))
    cuts = sorted(draw(st.sets(st.integers(1, len(trades)), max_size=len(trades))) | {len(trades)})
    batches, start = [], 0
    for cut in cuts:
        batch = trades[start:cut]
        # duplicates: repeats of this or any earlier batch, as a backfill overlap makes them
        batch += draw(st.lists(st.sampled_from(trades[:cut]), max_size=3))
        batch = draw(st.permutations(batch))
        next_ts = trades[cut].ts_ms if cut < len(trades) else ts + INTERVAL
        close_at = draw(st.integers(T0, next_ts))
        batches.append((list(batch), close_at))
        start = cut
    return trades, batches


@settings(max_examples=300, deadline=None)
@given(_deliveries())
def test_any_batching_and_any_repeats_give_the_same_intervals(
    case: tuple[list[VenueTrade], list[tuple[list[VenueTrade], int]]],
) -> None:
    trades, batches = case
    book = IntervalBook("BTC/JPY", INTERVAL, T0)
    closed: list[IntervalVolume] = []
    for batch, close_at in batches:
        book.add(batch)
        closed += book.close(close_at)
    closed += book.close(trades[-1].ts_ms + INTERVAL)
    assert {v.start_ms: v.notional for v in closed} == _brute_force(trades, INTERVAL)
    assert sum(v.trades for v in closed) == len(trades)
    assert len({v.start_ms for v in closed}) == len(closed)  # each interval closed once
    assert book.late == 0


def test_bridged_price_is_rounded_once() -> None:
    # USDT/JPY = 7,500,000 / 50,000 = 150; ETH = 2,500.5 USDT = 375,075 JPY
    assert bridged_price(Decimal("2500.5"), Decimal(50000), Decimal(7500000)) == 375075
    third = bridged_price(Decimal(1), Decimal(3), Decimal(1))
    assert third == Decimal("0.3333333333333333333333333333")
    with pytest.raises(ValueError, match="positive"):
        bridged_price(Decimal(1), Decimal(0), Decimal(1))


# -- against the double -------------------------------------------------------------------


@pytest.fixture
async def double(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VenueDouble]:
    venue = VenueDouble()
    await venue.start()
    monkeypatch.setenv("RESERVE_MONITOR_VENUE_API_BINANCE", venue.url("binance"))
    monkeypatch.setenv("RESERVE_MONITOR_VENUE_API_BITFLYER", venue.url("bitflyer"))
    yield venue
    await venue.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[Any]]:
    """The ccxt clients a test made; closed after it, as ccxt asks."""
    made: list[Any] = []
    yield made
    for client in made:
        await client.close()


class Published:
    """The real JSON Lines sink, writing to a file the test reads back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sink = JsonLinesSink(path.open("a", encoding="utf-8"), owned=True)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [line["value"] for line in self.lines() if line["topic"] == topic]


@pytest.fixture
async def published(tmp_path: Path) -> AsyncIterator[Published]:
    out = Published(tmp_path / "events.jsonl")
    yield out
    await out.sink.close()


def _client(clients: list[Any], venue: str, *, streaming: bool) -> Any:
    client = create_client(venue, streaming=streaming)
    client.enableRateLimit = False  # ccxt's throttle is for the venue's limits, not the double's
    clients.append(client)
    return client


def _trade_feed(
    clients: list[Any], venue: str, markets: list[str], published: Published, clock: Clock
) -> TradeFeed:
    client = _client(clients, venue, streaming=True)
    feed = TradeFeed(
        client,
        exchange="dmm",
        markets=markets,
        sink=published.sink,
        interval_ms=INTERVAL,
        settle_ms=SETTLE,
        lookback_ms=INTERVAL,
        clock=clock,
    )
    feed.first_backoff_s = 0
    return feed


async def _until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (an outage of 10 s fails the test)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def _trusted(feed: TradeFeed, market: str, last_id: int) -> bool:
    """The feed has counted up to ``last_id`` and trusts its websocket again."""
    return feed.books[market].last_id == last_id and market not in feed.unsure


async def _following_btc(
    double: VenueDouble, clients: list[Any], published: Published
) -> tuple[TradeFeed, Clock, asyncio.Task[None]]:
    """A Binance BTC/USDT feed followed over its websocket, which it trusts after a first
    trade: the feed, its clock and the follower (the caller cancels it)."""
    clock = Clock(T0 + 1_000)
    feed = _trade_feed(clients, "binance", ["BTC/USDT"], published, clock)
    await feed.open()
    follower = asyncio.create_task(feed.follow("BTC/USDT"))
    try:
        await double.subscribed("BTCUSDT")
        first = await double.trade("binance", "BTCUSDT", "0.1", "1", T0 + 2_000)
        await _until(lambda: _trusted(feed, "BTC/USDT", first))
    except BaseException:
        follower.cancel()
        raise
    return feed, clock, follower


def _notional_by_start(values: list[dict[str, Any]], market: str) -> dict[int, Decimal]:
    """The published notional per interval start; each id once, and repeats identical."""
    by_id: dict[str, dict[str, Any]] = {}
    for value in values:
        if value["market"] == market:
            assert by_id.setdefault(value["event_id"], value) == value
    return {_start_of(value["event_id"]): Decimal(value["notional"]) for value in by_id.values()}


def _start_of(event_id: str) -> int:
    """The interval start an id names: ``<venue>:<market>:<start>``."""
    start = datetime.fromisoformat(event_id.split(":", 2)[2])
    return int(start.timestamp() * 1000)


def _valid(lines: list[dict[str, Any]]) -> None:
    """Every line is an event the monitor accepts (its own decoder, not a copy of the schema)."""
    for line in lines:
        decode(Topic(line["topic"]), line["key"], json.dumps(line["value"]).encode())


async def test_ccxt_hands_back_decimals_built_from_the_venues_text(
    double: VenueDouble, clients: list[Any]
) -> None:
    # bitFlyer sends JSON numbers; as binary floats 0.1 * 0.3 is 0.030000000000000002
    await double.trade("bitflyer", "BTC_JPY", "0.1", "0.3", T0)
    client = _client(clients, "bitflyer", streaming=False)
    [trade] = await client.fetch_trades("BTC/JPY")
    assert (trade["price"], trade["amount"]) == (Decimal("0.1"), Decimal("0.3"))
    assert isinstance(trade["price"], Decimal) and isinstance(trade["amount"], Decimal)
    assert trade["price"] * trade["amount"] == Decimal("0.03")
    plain = _client(clients, "bitflyer", streaming=False)
    plain.number = float  # ccxt's default
    with pytest.raises(TypeError, match="number=Decimal"):
        venue_trade((await plain.fetch_trades("BTC/JPY"))[0])


async def test_binance_websocket_trades_become_closed_intervals(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    clock = Clock(T0 + 1_000)
    feed = _trade_feed(clients, "binance", ["BTC/USDT"], published, clock)
    await feed.open()
    assert feed.streaming
    follower = asyncio.create_task(feed.follow("BTC/USDT"))
    try:
        await double.subscribed("BTCUSDT")
        for n in range(3):
            await double.trade("binance", "BTCUSDT", "0.1", "1", T0 + 1_000 + n)
        last = await double.trade("binance", "BTCUSDT", "0.1", "3", T0 + INTERVAL + 500)
        await _until(lambda: _trusted(feed, "BTC/USDT", last))
        assert "BTC/USDT" not in feed.unsure  # the first batch backfilled, then trusted

        clock.now_ms = T0 + INTERVAL + SETTLE - 1  # the first interval ended, but not settled
        assert await feed.publish_closed() == []
        clock.now_ms = T0 + INTERVAL + SETTLE
        [event] = await feed.publish_closed()
        assert event.value["notional"] == "0.3"
        assert event.value["currency"] == "USDT"
        assert event.value["ts"] == "2024-05-31T13:26:10Z"
        clock.now_ms = T0 + 2 * INTERVAL + SETTLE
        [event] = await feed.publish_closed()
        assert event.value["notional"] == "0.3"
    finally:
        follower.cancel()
    _valid(published.lines())
    assert _notional_by_start(published.values("exchange.trades"), "BTC/USDT") == (
        double.notional_by_interval("binance", "BTCUSDT", INTERVAL)
    )


async def test_a_websocket_gap_is_backfilled_when_the_stream_returns(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    feed, clock, follower = await _following_btc(double, clients, published)
    try:
        await double.drop_streams(hold=True)  # mid-interval
        await _until(lambda: "BTC/USDT" in feed.unsure)
        for n in range(4):  # made while no websocket is up: only REST has them
            await double.trade("binance", "BTCUSDT", "0.1", "3", T0 + 3_000 + n)
        double.resume_streams()
        await double.subscribed("BTCUSDT")
        last = await double.trade("binance", "BTCUSDT", "0.2", "1", T0 + 4_000)
        await _until(lambda: _trusted(feed, "BTC/USDT", last))
        assert "BTC/USDT" not in feed.unsure
        clock.now_ms = T0 + INTERVAL + SETTLE
        [event] = await feed.publish_closed()
    finally:
        follower.cancel()
    # 0.1 + 4 * 0.3 + 0.2, each trade once
    assert event.value["notional"] == "1.5"
    assert _notional_by_start(published.values("exchange.trades"), "BTC/USDT") == (
        double.notional_by_interval("binance", "BTCUSDT", INTERVAL)
    )
    assert any("fromId=" in request for request in double.requests)


async def test_while_the_websocket_is_down_intervals_close_from_rest(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    feed, clock, follower = await _following_btc(double, clients, published)
    try:
        await double.drop_streams(hold=True)
        await _until(lambda: "BTC/USDT" in feed.unsure)
        await double.trade("binance", "BTCUSDT", "0.1", "2", T0 + 5_000)
        await double.trade("binance", "BTCUSDT", "0.1", "1", T0 + INTERVAL + 1)
        clock.now_ms = T0 + INTERVAL + SETTLE
        [event] = await feed.publish_closed()  # backfills first: the stream is not trusted
        assert event.value["notional"] == "0.3"
        assert "BTC/USDT" in feed.unsure  # until a websocket batch comes back
    finally:
        follower.cancel()
        double.resume_streams()


async def test_a_connection_that_ccxt_redialled_quietly_is_not_trusted(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    # a drop while no watch waits raises nothing: ccxt dials again at the next watch
    feed, clock, follower = await _following_btc(double, clients, published)
    follower.cancel()
    await double.drop_streams()
    await _until(lambda: not feed.client.clients)  # ccxt forgot the closed connection
    await double.trade("binance", "BTCUSDT", "0.1", "2", T0 + 3_000)
    clock.now_ms = T0 + INTERVAL + SETTLE
    [event] = await feed.publish_closed()
    assert event.value["notional"] == "0.3"


async def test_the_feed_runs_until_cancelled(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    clock = Clock(T0 + 1_000)
    feed = _trade_feed(clients, "binance", ["BTC/USDT", "ETH/USDT"], published, clock)
    feed.tick_s = 0.01
    running = asyncio.create_task(feed.run())
    await double.subscribed("BTCUSDT")
    await double.subscribed("ETHUSDT")
    await double.trade("binance", "BTCUSDT", "0.1", "1", T0 + 2_000)
    await double.trade("binance", "ETHUSDT", "0.1", "2", T0 + 2_000)
    clock.now_ms = T0 + INTERVAL + SETTLE
    await _until(lambda: len(published.values("exchange.trades")) == 2)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    notional = {v["market"]: v["notional"] for v in published.values("exchange.trades")}
    assert notional == {"BTC/USDT": "0.1", "ETH/USDT": "0.2"}


async def test_a_restart_publishes_what_the_last_run_left_and_nothing_twice(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    # the first run: streams, publishes the first interval, dies in the middle of the second
    first_run, clock, follower = await _following_btc(double, clients, published)
    try:
        last = await double.trade("binance", "BTCUSDT", "0.1", "2", T0 + INTERVAL + 1_000)
        await _until(lambda: _trusted(first_run, "BTC/USDT", last))
        clock.now_ms = T0 + INTERVAL + SETTLE
        [before_restart] = await first_run.publish_closed()
    finally:
        follower.cancel()
    await double.drop_streams()
    # while nothing runs: more trades in the second interval, 2,100 in the third (pages)
    await double.trade("binance", "BTCUSDT", "0.1", "5", T0 + INTERVAL + 4_000)
    for n in range(2_100):
        await double.trade("binance", "BTCUSDT", "0.1", "0.1", T0 + 2 * INTERVAL + n)
    # the second run starts in the fourth interval and looks back to the first
    clock.now_ms = T0 + 3 * INTERVAL + 100
    second_run = _trade_feed(clients, "binance", ["BTC/USDT"], published, clock)
    second_run.lookback_ms = 3 * INTERVAL
    await second_run.open()
    clock.now_ms = T0 + 3 * INTERVAL + SETTLE
    events = await second_run.publish_closed()
    assert [e.value["ts"] for e in events] == [
        rfc3339(T0 + INTERVAL),
        rfc3339(T0 + 2 * INTERVAL),
        rfc3339(T0 + 3 * INTERVAL),
    ]
    assert events[0] == before_restart  # published again, the same event: a duplicate
    assert events[1].value["notional"] == "0.7"  # 0.2 before the restart, 0.5 after
    assert Decimal(events[2].value["notional"]) == Decimal("0.01") * 2_100
    assert _notional_by_start(published.values("exchange.trades"), "BTC/USDT") == (
        double.notional_by_interval("binance", "BTCUSDT", INTERVAL)
    )


async def test_bitflyer_trades_are_polled_over_rest_by_id_page_after_page(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    await double.trade("bitflyer", "BTC_JPY", "1", "1", T0 + 100)  # the feed starts from its id
    clock = Clock(T0 + 1_000)
    feed = _trade_feed(clients, "bitflyer", ["BTC/JPY", "ETH/JPY"], published, clock)
    await feed.open()
    assert not feed.streaming  # ccxt.pro has no bitFlyer: REST it is
    # 1,200 executions, the two products interleaved (bitFlyer's ids run across products)
    for n in range(600):
        await double.trade("bitflyer", "BTC_JPY", "0.1", "3", T0 + 2_000 + 20 * n)
        await double.trade("bitflyer", "ETH_JPY", "0.3", "0.1", T0 + 2_000 + 20 * n + 5)
    clock.now_ms = T0 + INTERVAL + SETTLE
    first = await feed.publish_closed()
    clock.now_ms = T0 + 2 * INTERVAL + SETTLE
    second = await feed.publish_closed()
    # 400 of each in the first interval, 200 in the second
    assert {e.value["market"]: e.value["notional"] for e in first} == {
        "BTC/JPY": "121",
        "ETH/JPY": "12",
    }
    assert {e.value["market"]: e.value["notional"] for e in second} == {
        "BTC/JPY": "60",
        "ETH/JPY": "6",
    }
    assert [e.value["currency"] for e in first + second] == ["JPY"] * 4
    for market, product in (("BTC/JPY", "BTC_JPY"), ("ETH/JPY", "ETH_JPY")):
        assert _notional_by_start(published.values("exchange.trades"), market) == (
            double.notional_by_interval("bitflyer", product, INTERVAL)
        )
    assert any("before=" in request and "after=" in request for request in double.requests)
    _valid(published.lines())


async def test_a_bitflyer_restart_reads_back_from_a_time(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    for n in range(1_100):  # before and inside the look-back
        await double.trade("bitflyer", "BTC_JPY", "0.1", "1", T0 - INTERVAL + 15 * n)
    clock = Clock(T0 + 2 * INTERVAL + 500)
    feed = _trade_feed(clients, "bitflyer", ["BTC/JPY"], published, clock)
    feed.lookback_ms = 2 * INTERVAL
    await feed.open()
    clock.now_ms = T0 + 3 * INTERVAL + SETTLE
    await feed.publish_closed()
    assert _notional_by_start(published.values("exchange.trades"), "BTC/JPY") == (
        double.notional_by_interval("bitflyer", "BTC_JPY", INTERVAL, from_ms=T0)
    )


# -- prices -------------------------------------------------------------------------------


async def _price_feed(
    clients: list[Any], venue: str, assets: list[str], published: Published
) -> PriceFeed:
    client = _client(clients, venue, streaming=False)
    reference = _client(clients, "bitflyer", streaming=False)
    feed = PriceFeed(
        client, assets=assets, currency="JPY", sink=published.sink, reference_client=reference
    )
    await feed.open()
    return feed


async def test_bitflyer_prices_are_its_jpy_pairs(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    double.set_ticker("bitflyer", "BTC_JPY", "10700000.5", T0 + 250)
    double.set_ticker("bitflyer", "ETH_JPY", "512345.1", T0 + 300)
    feed = await _price_feed(clients, "bitflyer", ["BTC", "ETH"], published)
    events = await feed.poll()
    assert [e.value for e in events] == [
        {
            "event_id": "bitflyer:BTC:2024-05-31T13:26:00.250Z",
            "asset": "BTC",
            "ts": "2024-05-31T13:26:00.250Z",
            "price": "10700000.5",
            "currency": "JPY",
        },
        {
            "event_id": "bitflyer:ETH:2024-05-31T13:26:00.300Z",
            "asset": "ETH",
            "ts": "2024-05-31T13:26:00.300Z",
            "price": "512345.1",
            "currency": "JPY",
        },
    ]
    assert [e.key for e in events] == ["BTC", "ETH"]
    assert await feed.poll() == []  # no newer ticker, nothing new
    double.set_ticker("bitflyer", "BTC_JPY", "10700001", T0 + 1_000)
    [event] = await feed.poll()
    assert (event.value["asset"], event.value["price"]) == ("BTC", "10700001")
    _valid(published.lines())


async def test_binance_prices_reach_jpy_through_usdt_priced_by_bitflyer(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    double.set_ticker("binance", "BTCUSDT", "50000", T0 + 100)
    double.set_ticker("binance", "ETHUSDT", "2500.5", T0 + 200)
    double.set_ticker("bitflyer", "BTC_JPY", "7500000", T0 + 150)
    feed = await _price_feed(clients, "binance", ["BTC", "ETH", "USDT"], published)
    assert "USDT valued as BTC/JPY on bitflyer / BTC/USDT" in feed.describe()
    events = await feed.poll()
    prices = {e.value["asset"]: (e.value["price"], e.value["ts"]) for e in events}
    assert prices == {
        "BTC": ("7500000", "2024-05-31T13:26:00.150Z"),  # BTC/USDT * 150 JPY a USDT
        "ETH": ("375075", "2024-05-31T13:26:00.200Z"),  # 2,500.5 * 150
        "USDT": ("150", "2024-05-31T13:26:00.150Z"),  # 7,500,000 / 50,000
    }
    assert all(e.value["currency"] == "JPY" for e in events)
    _valid(published.lines())


async def test_prices_refuse_an_asset_with_no_pair(
    double: VenueDouble, clients: list[Any], published: Published
) -> None:
    with pytest.raises(Exception, match="bitflyer has no DOGE/JPY"):
        await _price_feed(clients, "bitflyer", ["DOGE"], published)
    with pytest.raises(Exception, match="binance has no XRP/JPY or XRP/USDT"):
        await _price_feed(clients, "binance", ["XRP"], published)


# -- the commands -------------------------------------------------------------------------


# run() starts its own event loop: in a thread, so the double's loop keeps serving


async def test_feed_trades_says_which_market_is_unknown(
    double: VenueDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(
        exchange="dmm",
        venue="bitflyer",
        markets=["DOGE/JPY"],
        jsonl=str(tmp_path / "out.jsonl"),
    )
    assert await asyncio.to_thread(trades_command.run, args) == 1
    assert "feed trades: bitflyer has no market DOGE/JPY" in capsys.readouterr().err


def test_feed_trades_refuses_an_unknown_venue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(
        exchange="dmm", venue="mtgox", markets=["BTC/JPY"], jsonl=str(tmp_path / "o.jsonl")
    )
    assert trades_command.run(args) == 1
    assert "unknown venue 'mtgox'" in capsys.readouterr().err


async def test_feed_prices_says_which_asset_has_no_pair(
    double: VenueDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(venue="binance", assets=["XRP"], jsonl=str(tmp_path / "o.jsonl"))
    assert await asyncio.to_thread(prices_command.run, args) == 1
    assert "feed prices: binance has no XRP/JPY or XRP/USDT" in capsys.readouterr().err


def test_outgoing_events_are_plain_json() -> None:
    event = trade_event(
        "binance", "dmm", IntervalVolume("BTC/USDT", T0, T0 + INTERVAL, Decimal("1E+2"), 1), "USDT"
    )
    assert isinstance(event, Outgoing)
    assert event.value["notional"] == "100"
