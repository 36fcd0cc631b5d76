"""(f) The core's cost per event as the market grows: wallets per exchange, exchanges.

A market of ``exchanges`` exchanges with ``wallets`` wallet positions each (every
exchange under the default policy, jp and ops: five rules) is built first;
then a fixed mix of exchange events (wallet snapshots of existing wallets,
trades, ledger figures), 10 ms of event time apart, is taken in sequence and
the input finished, as ``replay`` drives the engine. Each event opens a moment
of its exchange, which the exchange's next event closes and judges (or
``finish``, for the last moment of each exchange), so every event pays one
judgment of its exchange (CONTRACT section 8). An incremental core costs the
same per event at every size.

Price events are timed apart, the same way: a price dated after an exchange's
clock is a moment of every exchange that holds the asset (here all of them), so
one price event costs in proportion to the exchanges (not to their wallets).

CPU time of this process (``process_time``), the least of ``repeats`` runs. The
sizes are timed one after the other, minutes apart on a machine whose speed moves
meanwhile; the instructions an event at each size, which do not move, are counted by
``python -m bench.instructions --scaling`` (``bench/instructions.py``).
"""

from __future__ import annotations

import cProfile
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from monitor.core.engine import Engine
from monitor.core.events import Event, Topic, decode_document
from monitor.core.money import rfc3339
from monitor.core.policy import load_policy

ASSETS = ("BTC", "ETH", "XRP", "USDT")
PRICES = {
    a: Decimal(p) for a, p in (("BTC", 10_000_000), ("ETH", 500_000), ("XRP", 80), ("USDT", 150))
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# (exchanges, wallets per exchange) of each market measured
SIZES = [(1, 10), (1, 1_000), (1, 100_000), (100, 10), (1_000, 10)]


class _Market:
    def __init__(self, exchanges: int, wallets: int, seed: int = 7) -> None:
        self.engine = Engine(load_policy(None))
        self.rng = random.Random(seed)
        self.exchanges = [f"ex-{n:04d}" for n in range(exchanges)]
        self.wallets = wallets
        self.n = 0
        self.now = T0
        for asset in ASSETS:
            self.engine.take(self._price(asset, PRICES[asset]))
        for exchange in self.exchanges:
            self.engine.take(self._fund(exchange, 5_000_000_000))
            for w in range(wallets):
                self.engine.take(self._wallet(exchange, w, 100))
            for asset in ASSETS:
                liability = {"type": "customer_liability", "asset": asset, "amount": str(wallets)}
                self.engine.take(self._event(Topic.LEDGER, exchange, liability))
            self.engine.finish()

    def _event(self, topic: Topic, exchange: str | None, fields: dict[str, Any]) -> Event:
        self.n += 1
        document = {"event_id": f"e-{self.n}", "ts": rfc3339(self.now), **fields}
        if exchange is not None:
            document["exchange"] = exchange
        return decode_document(topic, None, document)

    def _price(self, asset: str, price: Decimal) -> Event:
        return self._event(
            Topic.PRICES, None, {"asset": asset, "price": str(price), "currency": "JPY"}
        )

    def _fund(self, exchange: str, amount: int) -> Event:
        fund = {"type": "reserve_fund", "amount": str(amount), "currency": "JPY"}
        return self._event(Topic.LEDGER, exchange, fund)

    def _wallet(self, exchange: str, w: int, balance: int) -> Event:
        # of every ten wallets, one hot guarantee wallet and one hot customer wallet of the
        # same asset, and eight cold customer wallets: the same kinds in the same shares at
        # every size, the smallest (10 wallets) included. The guarantee holds twice what it
        # covers, so that its rule stays ok at every size (a guarantee about equal to the
        # hot customer crypto would change status as often as the sums cross, more often
        # the more wallets there are: another mix of work, not another size)
        kind = w % 10
        hot = kind < 2
        snapshot = {
            "wallet": f"w-{w}",
            "asset": ASSETS[(w // 10 if hot else w) % len(ASSETS)],
            "balance": str(balance * 2 if kind == 0 else balance),
            "custody": "hot" if hot else "cold",
            "holder": "guarantee" if kind == 0 else "customer",
        }
        return self._event(Topic.WALLET_BALANCES, exchange, snapshot)

    def next_event(self) -> Event:
        self.now += timedelta(milliseconds=10)
        exchange = self.rng.choice(self.exchanges)
        kind = self.rng.random()
        if kind < 0.5:
            trade = {"market": "BTC/JPY", "notional": "1250000", "currency": "JPY"}
            return self._event(Topic.TRADES, exchange, trade)
        if kind < 0.95:
            return self._wallet(
                exchange, self.rng.randrange(self.wallets), 100 + self.rng.randrange(5)
            )
        return self._fund(exchange, 5_000_000_000 + self.rng.randrange(9))

    def next_price(self) -> Event:
        self.now += timedelta(milliseconds=10)
        asset = self.rng.choice(ASSETS)
        return self._price(asset, PRICES[asset] * (1 + Decimal(self.rng.randrange(-5, 6)) / 1000))


def _per_event_us(market: _Market, events: int, make: Any) -> float:
    batch = [make() for _ in range(events)]
    engine = market.engine
    # CPU time of this process: what the core costs, not what other processes took
    take = engine.take
    started = time.process_time()
    for event in batch:
        take(event)
    engine.finish()  # the last moment of each exchange: judged once, like the others
    return (time.process_time() - started) / events * 1e6


def _calls_per_event(market: _Market, events: int) -> tuple[float, float]:
    """Python function calls and judgments per event. The compiled core's calls are not
    Python calls and are not counted (a handful are left); its instructions per event,
    the work done whatever the noise, are counted by ``bench.instructions --scaling``."""
    batch = [market.next_event() for _ in range(events)]
    engine = market.engine
    judged = 0
    profile = cProfile.Profile()
    profile.enable()
    for event in batch:
        judged += len(engine.take(event).evaluated)
    judged += len(engine.finish().evaluated)
    profile.disable()
    calls = sum(entry.callcount for entry in profile.getstats())
    return calls / events, judged / events


def _judged_per_price(market: _Market, events: int) -> float:
    """Exchanges judged per price event (all that hold the asset, if each is a moment)."""
    engine = market.engine
    judged = sum(len(engine.take(market.next_price()).evaluated) for _ in range(events))
    return (judged + len(engine.finish().evaluated)) / events


def measure(events: int = 10_000, repeats: int = 3) -> dict[str, Any]:
    """µs per event at each size (the least of ``repeats`` runs); prints a table as it goes.

    The least of several runs is the figure least disturbed by the rest of the
    machine (other processes, a garbage collection landing in one run).
    """
    rows: dict[str, Any] = {
        "exchange_events_us": {},
        "exchange_event_calls": {},
        "exchange_event_judgments": {},
        "price_event_us": {},
        "price_event_us_per_exchange": {},
        "price_event_judgments": {},
    }
    for exchanges, wallets in SIZES:
        market = _Market(exchanges, wallets)
        exchange_us = min(_per_event_us(market, events, market.next_event) for _ in range(repeats))
        price_us = min(
            _per_event_us(market, max(20, events // 100), market.next_price) for _ in range(repeats)
        )
        calls, judged = _calls_per_event(market, 2_000)
        price_judged = _judged_per_price(market, 20)
        label = f"{exchanges} exchanges x {wallets} wallets"
        rows["exchange_events_us"][label] = round(exchange_us, 1)
        rows["exchange_event_calls"][label] = round(calls, 1)
        rows["exchange_event_judgments"][label] = round(judged, 2)
        rows["price_event_us"][label] = round(price_us, 1)
        rows["price_event_us_per_exchange"][label] = round(price_us / exchanges, 1)
        rows["price_event_judgments"][label] = round(price_judged, 1)
        print(
            f"      {label:28} {exchange_us:7.1f} µs/exchange event ({calls:4.0f} calls, "
            f"{judged:4.2f} judged)  {price_us:9.1f} µs/price event "
            f"({price_us / exchanges:6.1f} per exchange, {price_judged:6.1f} judged)",
            flush=True,
        )
    costs = list(rows["exchange_events_us"].values())
    rows["exchange_events_spread"] = round(max(costs) / min(costs), 2)
    calls_seen = list(rows["exchange_event_calls"].values())
    rows["exchange_event_calls_spread"] = round(max(calls_seen) / min(calls_seen), 3)
    return rows


if __name__ == "__main__":
    measure()
