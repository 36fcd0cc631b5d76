"""Synthetic input events in the contract's formats (CONTRACT.md section 3).

A scenario is a pure function of a start time, a seed and a few named
parameters: it never reads the clock, the network or the environment, so the
same arguments always give the same records, event ids included. Records
come out in event-time order. The sinks in `monitor.synthetic.simulator` move them
to Kafka or to a JSON Lines file.

Scenarios (registered in `SCENARIOS`):

- ``steady``: a few healthy exchanges trading normally; every rule ok.
- ``dmm-incident``: the demo story after DMM Bitcoin, 31 May 2024, for the
  exchange ``dmm`` with a healthy peer ``calm``: healthy, volume surge,
  cold-to-hot transfer, the 4,502.9 BTC drain, top-up, quiet hour.
- ``eu-venue``: a MiCA venue whose fixed overheads are restated, then
  recapitalised.

Each scenario also names its phases (`Phase`): when each begins in event
time and what the monitor is expected to conclude from it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

TRADES: Final = "exchange.trades"
WALLET_BALANCES: Final = "exchange.wallet-balances"
LEDGER: Final = "exchange.ledger"
PRICES: Final = "market.prices"
INPUT_TOPICS: Final = (TRADES, WALLET_BALANCES, LEDGER, PRICES)

REPORTING_CURRENCY: Final = "JPY"

# Two floor models the dmm-incident numbers are sized to hold under: a rate
# on trailing volume clamped to [¥2 bn, ¥40 bn], either 0.05% of 24 h volume
# or 0.5% of 30-day volume (the built-in jp pack's default). Used for labels.
FLOOR_RATE: Final = Decimal("0.0005")
PACK_FLOOR_RATE: Final = Decimal("0.005")
FLOOR_MIN: Final = Decimal(2_000_000_000)
FLOOR_MAX: Final = Decimal(40_000_000_000)
VOLUME_WINDOW: Final = timedelta(hours=24)

COLD_SHARE_MIN: Final = Decimal("0.95")

# The DMM Bitcoin loss of 31 May 2024, in one transfer out of a hot wallet.
DMM_STOLEN_BTC: Final = Decimal("4502.9")


@dataclass(frozen=True)
class Record:
    """One input event as it goes onto a topic.

    `topic` is the unprefixed contract name, `value` the JSON object (every
    field a string: decimals as plain decimal strings, times as RFC 3339 with
    ``Z``), `ts` the event time of `value["ts"]`, for ordering.
    """

    topic: str
    key: str
    value: dict[str, str] = field(hash=False)
    ts: datetime


@dataclass(frozen=True)
class Phase:
    """A stretch of a scenario, from `starts` (event time) to the next phase."""

    number: int
    name: str
    starts: datetime
    expect: str
    """What the monitor should conclude once the phase's events are in."""

    @property
    def label(self) -> str:
        return f"phase {self.number}: {self.name} — {self.expect}"


@dataclass(frozen=True)
class Scenario:
    """A named scenario: its records and its phases, from the same arguments."""

    name: str
    description: str
    records: Callable[..., Iterator[Record]]
    """``(start, seed, **params) -> Iterator[Record]``, in event-time order."""
    phases: Callable[..., list[Phase]]
    """``(start, seed, **params) -> list[Phase]``, in time order."""
    params: tuple[str, ...] = ()
    """Names of the keyword parameters the scenario accepts."""


# -- formatting ------------------------------------------------------------


def format_decimal(amount: Decimal) -> str:
    """Plain decimal notation, no exponent, no trailing fractional zeros."""
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not a finite non-negative amount: {amount}")
    if amount == amount.to_integral_value():
        return f"{amount.quantize(Decimal(1)):f}"
    return f"{amount.normalize():f}"


def event_time(ts: datetime) -> datetime:
    """`ts` in UTC at millisecond resolution (what `format_ts` can carry)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"event time needs a UTC offset: {ts.isoformat()}")
    ts = ts.astimezone(UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def format_ts(ts: datetime) -> str:
    """RFC 3339 with ``Z``; milliseconds only when there are any."""
    ts = event_time(ts)
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        text += f".{ts.microsecond // 1000:03d}"
    return text + "Z"


def restamp(record: Record, ts: datetime) -> Record:
    """The same event at another event time (live mode: wall clock now)."""
    ts = event_time(ts)
    return replace(record, ts=ts, value={**record.value, "ts": format_ts(ts)})


# -- event drafts (no event_id yet) -----------------------------------------

_ID_PREFIX: Final = {TRADES: "t", WALLET_BALANCES: "w", PRICES: "p"}
_LEDGER_ID_PREFIX: Final = {
    "customer_liability": "l",
    "reserve_fund": "f",
    "insurance_policy": "i",
    "own_funds": "o",
    "fixed_overheads": "x",
}


def _trade(exchange: str, ts: datetime, market: str, notional: Decimal, currency: str) -> Record:
    value = {
        "exchange": exchange,
        "ts": format_ts(ts),
        "market": market,
        "notional": format_decimal(notional),
        "currency": currency,
    }
    return Record(TRADES, exchange, value, event_time(ts))


def _price(asset: str, ts: datetime, price: Decimal) -> Record:
    value = {
        "asset": asset,
        "ts": format_ts(ts),
        "price": format_decimal(price),
        "currency": REPORTING_CURRENCY,
    }
    return Record(PRICES, asset, value, event_time(ts))


def _ledger(kind: str, exchange: str, ts: datetime, **fields: str) -> Record:
    value = {"type": kind, "exchange": exchange, "ts": format_ts(ts), **fields}
    return Record(LEDGER, exchange, value, event_time(ts))


def _liability(exchange: str, ts: datetime, asset: str, amount: Decimal) -> Record:
    return _ledger("customer_liability", exchange, ts, asset=asset, amount=format_decimal(amount))


def _fund(exchange: str, ts: datetime, amount: Decimal) -> Record:
    return _ledger(
        "reserve_fund", exchange, ts, amount=format_decimal(amount), currency=REPORTING_CURRENCY
    )


@dataclass(frozen=True)
class _Policy:
    policy_id: str
    coverage: Decimal
    currency: str
    valid_from: datetime
    valid_to: datetime

    def draft(self, exchange: str, ts: datetime) -> Record:
        return _ledger(
            "insurance_policy",
            exchange,
            ts,
            policy_id=self.policy_id,
            coverage=format_decimal(self.coverage),
            currency=self.currency,
            valid_from=format_ts(self.valid_from),
            valid_to=format_ts(self.valid_to),
        )


def _run_tag(scenario: str, seed: int, start: datetime) -> str:
    """The run part of event ids: the same run, the same ids; another start, others.

    Ids are unique per producer and a repeat is a duplicate, so two runs that
    differ only in their start must not share ids.
    """
    return f"{scenario}-{seed}-{start:%Y%m%dT%H%M%S}"


class _EventIds:
    """Gives drafts their event ids, ``{prefix}-{run}-{n:06d}`` in emit order."""

    def __init__(self, run: str) -> None:
        self._run = run
        self._issued: dict[str, int] = {}

    def assign(self, draft: Record) -> Record:
        if draft.topic == LEDGER:
            prefix = _LEDGER_ID_PREFIX[draft.value["type"]]
        else:
            prefix = _ID_PREFIX[draft.topic]
        n = self._issued[prefix] = self._issued.get(prefix, 0) + 1
        event_id = f"{prefix}-{self._run}-{n:06d}"
        if draft.topic == LEDGER:
            value = {"type": draft.value["type"], "event_id": event_id, **draft.value}
        else:
            value = {"event_id": event_id, **draft.value}
        return replace(draft, value=value)

    def emit(self, drafts: Iterable[Record]) -> Iterator[Record]:
        """Drafts in event-time order (stable for equal times), with ids."""
        for draft in sorted(drafts, key=lambda record: record.ts):
            yield self.assign(draft)


# -- wallets and prices ------------------------------------------------------


@dataclass
class _Wallet:
    wallet: str
    asset: str
    custody: str
    holder: str
    balance: Decimal

    def draft(self, exchange: str, ts: datetime) -> Record:
        value = {
            "exchange": exchange,
            "ts": format_ts(ts),
            "wallet": self.wallet,
            "asset": self.asset,
            "balance": format_decimal(self.balance),
            "custody": self.custody,
            "holder": self.holder,
        }
        return Record(WALLET_BALANCES, exchange, value, event_time(ts))


def _snapshot_order(wallets: Iterable[_Wallet]) -> list[_Wallet]:
    """Customer cold first, the exchange's own next, customer hot last.

    A monitor evaluates after every event; in this order a full re-send never
    passes through a state with too little cold (hot known, cold not yet).
    """

    def rank(wallet: _Wallet) -> int:
        if wallet.holder != "customer":
            return 1
        return 0 if wallet.custody == "cold" else 2

    return sorted(wallets, key=rank)


# Smallest unit each asset's quantities and JPY prices are rounded to.
_QUANTITY_STEP: Final = {
    "BTC": Decimal("0.0001"),
    "ETH": Decimal("0.0001"),
    "XRP": Decimal("0.01"),
    "USDT": Decimal("0.01"),
}
_PRICE_STEP: Final = {
    "BTC": Decimal(1),
    "ETH": Decimal(1),
    "XRP": Decimal("0.001"),
    "USDT": Decimal("0.001"),
    "EUR": Decimal("0.01"),
}
# JPY prices around 31 May 2024.
_OPENING_PRICES: Final = {
    "BTC": Decimal(10_700_000),
    "ETH": Decimal(600_000),
    "XRP": Decimal(80),
    "USDT": Decimal(157),
    "EUR": Decimal("170.00"),
}


def _draw_int(rng: random.Random, low: int, high: int) -> int:
    """Uniform on [low, high]; `random()` only, whose stream is stable across Pythons."""
    return low + int(rng.random() * (high - low + 1))


def _draw(rng: random.Random, low: Decimal, high: Decimal, step: Decimal) -> Decimal:
    """Uniform on [low, high] in multiples of `step`, exactly."""
    steps = _draw_int(rng, 0, int((high - low) / step))
    return low + steps * step


class _PriceWalk:
    """JPY prices taking small random steps (at most 0.1% each)."""

    def __init__(self, assets: Iterable[str]) -> None:
        self.prices = {asset: _OPENING_PRICES[asset] for asset in assets}

    def step(self, rng: random.Random) -> None:
        for asset, price in self.prices.items():
            basis_points = _draw_int(rng, -10, 10)
            moved = price * (10_000 + basis_points) / 10_000
            self.prices[asset] = moved.quantize(_PRICE_STEP[asset])

    def drafts(self, ts: datetime) -> list[Record]:
        return [_price(asset, ts, price) for asset, price in self.prices.items()]


def _quantity(asset: str, amount: Decimal) -> Decimal:
    return amount.quantize(_QUANTITY_STEP[asset])


def _annual_policy(policy_id: str, coverage: Decimal, currency: str, start: datetime) -> _Policy:
    """A one-year policy that began a while ago and covers the whole run."""
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    valid_from = midnight - timedelta(days=120)
    return _Policy(policy_id, coverage, currency, valid_from, valid_from + timedelta(days=365))


def floor_for(volume: Decimal, rate: Decimal = FLOOR_RATE) -> Decimal:
    """The modelled `jp.liability_reserve` floor for a trailing volume."""
    return min(max(rate * volume, FLOOR_MIN), FLOOR_MAX)


def _bn(amount: Decimal) -> str:
    """Yen in billions for labels: ``¥6 bn``, ``¥2.5 bn``."""
    billions = (amount / 1_000_000_000).quantize(Decimal("0.1"))
    return f"¥{format_decimal(billions)} bn"


def _tn(amount: Decimal) -> str:
    trillions = (amount / 1_000_000_000_000).quantize(Decimal("0.1"))
    return f"¥{format_decimal(trillions)} tn"


# -- steady ------------------------------------------------------------------

_STEADY_ASSETS: Final = ("BTC", "ETH", "XRP", "USDT")
# Customer holdings of an exchange of size 1, and the share kept hot.
_STEADY_HOLDINGS: Final = {
    "BTC": (Decimal(5_000), Decimal("0.03")),
    "ETH": (Decimal(50_000), Decimal("0.03")),
    "XRP": (Decimal(100_000_000), Decimal("0.035")),
    "USDT": (Decimal(50_000_000), Decimal("0.03")),
}
# Markets and their quote currency; USDT-quoted trades carry USDT notionals.
_STEADY_MARKETS: Final = (
    ("BTC/JPY", REPORTING_CURRENCY),
    ("BTC/JPY", REPORTING_CURRENCY),
    ("ETH/JPY", REPORTING_CURRENCY),
    ("XRP/JPY", REPORTING_CURRENCY),
    ("BTC/USDT", "USDT"),
    ("ETH/USDT", "USDT"),
)
_GUARANTEE_MARGIN: Final = Decimal("1.05")
_LIABILITY_SHARE: Final = Decimal("0.995")
_PRICE_EVERY: Final = 5
_WALLETS_EVERY: Final = 60
_LEDGER_EVERY: Final = 300


@dataclass
class _SteadyVenue:
    exchange: str
    wallets: list[_Wallet]
    hot_base: dict[str, Decimal]
    liabilities: dict[str, Decimal]
    fund: Decimal
    policy: _Policy
    size: Decimal
    next_trade: datetime

    def drift_hot(self, rng: random.Random) -> None:
        """Deposits and withdrawals move hot balances within ±2% of their base."""
        for wallet in self.wallets:
            if wallet.custody == "hot" and wallet.holder == "customer":
                per_mille = _draw_int(rng, -20, 20)
                base = self.hot_base[wallet.wallet]
                wallet.balance = _quantity(wallet.asset, base * (1000 + per_mille) / 1000)

    def reserve_drafts(self, ts: datetime) -> list[Record]:
        return [self.policy.draft(self.exchange, ts), _fund(self.exchange, ts, self.fund)]

    def liability_drafts(self, ts: datetime) -> list[Record]:
        return [_liability(self.exchange, ts, a, q) for a, q in self.liabilities.items()]

    def wallet_drafts(self, ts: datetime) -> list[Record]:
        return [wallet.draft(self.exchange, ts) for wallet in _snapshot_order(self.wallets)]

    def trade(self, rng: random.Random) -> Record:
        market, currency = _STEADY_MARKETS[_draw_int(rng, 0, len(_STEADY_MARKETS) - 1)]
        if currency == REPORTING_CURRENCY:
            notional = _draw(rng, Decimal(100_000), Decimal(50_000_000), Decimal(1_000))
        else:
            notional = _draw(rng, Decimal(500), Decimal(300_000), Decimal("0.01"))
        record = _trade(self.exchange, self.next_trade, market, notional * self.size, currency)
        self.next_trade += timedelta(milliseconds=_draw_int(rng, 1_000, 5_000))
        return record


def _steady_venue(index: int, start: datetime, rng: random.Random) -> _SteadyVenue:
    exchange = f"ex-{index:02d}"
    size = _draw(rng, Decimal("0.5"), Decimal(2), Decimal("0.1"))
    wallets: list[_Wallet] = []
    hot_base: dict[str, Decimal] = {}
    liabilities: dict[str, Decimal] = {}
    for asset in _STEADY_ASSETS:
        holdings, hot_share = _STEADY_HOLDINGS[asset]
        total = _quantity(asset, holdings * size)
        hot = _quantity(asset, total * hot_share)
        name = asset.lower()
        # Two hot wallets for the busiest asset, as exchanges shard withdrawals.
        hot_names = [f"{name}-hot-1", f"{name}-hot-2"] if asset == "BTC" else [f"{name}-hot-1"]
        for position, wallet in enumerate(hot_names):
            share = _quantity(asset, hot / len(hot_names))
            if position == len(hot_names) - 1:
                share = hot - share * (len(hot_names) - 1)
            hot_base[wallet] = share
            wallets.append(_Wallet(wallet, asset, "hot", "customer", share))
        cold = total - hot
        cold_first = _quantity(asset, cold * Decimal("0.6"))
        wallets.append(_Wallet(f"{name}-cold-1", asset, "cold", "customer", cold_first))
        wallets.append(_Wallet(f"{name}-cold-2", asset, "cold", "customer", cold - cold_first))
        # Performance-guarantee crypto mirrors the customer hot holdings and,
        # as the Payment Services Act asks, is itself kept cold.
        guarantee = _quantity(asset, hot * _GUARANTEE_MARGIN)
        wallets.append(_Wallet(f"{name}-guarantee-1", asset, "cold", "guarantee", guarantee))
        liabilities[asset] = _quantity(asset, total * _LIABILITY_SHARE)
    # Operating float of the exchange's own: hot, but not customer assets.
    house = _quantity("USDT", Decimal(2_000_000) * size)
    wallets.append(_Wallet("usdt-house-1", "USDT", "hot", "house", house))
    fund = _draw(rng, Decimal(3_000_000_000), Decimal(8_000_000_000), Decimal(100_000_000))
    policy = _annual_policy(f"{exchange}-cyber-1", Decimal(1_000_000_000), "JPY", start)
    first_trade = start + timedelta(milliseconds=_draw_int(rng, 0, 2_000))
    return _SteadyVenue(exchange, wallets, hot_base, liabilities, fund, policy, size, first_trade)


def steady(
    start: datetime,
    seed: int,
    *,
    exchanges: int = 3,
    duration: float | None = 600.0,
    run: str | None = None,
) -> Iterator[Record]:
    """Healthy exchanges ``ex-01``… trading BTC, ETH, XRP and USDT.

    A trade per exchange every 1 to 5 s (JPY notionals, some in USDT), prices
    every 5 s, wallet snapshots every minute, ledger snapshots every five
    minutes, for `duration` seconds of event time (``None``: without end).
    About 97% of customer value is cold, guarantee wallets hold 105% of the
    customer hot holdings, liabilities are 99.5% of the customer holdings,
    the reserve fund is ¥3 to 8 bn and volume stays far below the ¥4 tn a day
    that would lift the floor above ¥2 bn. `run` replaces the
    ``steady-SEED-START`` part of the event ids.
    """
    if exchanges < 1:
        raise ValueError("steady needs at least one exchange")
    start = event_time(start)
    rng = random.Random(seed)
    ids = _EventIds(run or _run_tag("steady", seed, start))
    market = _PriceWalk(_STEADY_ASSETS)
    venues = [_steady_venue(index, start, rng) for index in range(1, exchanges + 1)]
    second = 0
    while duration is None or second < duration:
        now = start + timedelta(seconds=second)
        drafts: list[Record] = []
        if second % _PRICE_EVERY == 0:
            if second:
                market.step(rng)
            drafts += market.drafts(now)
        for venue in venues:
            # Reserves, then holdings, then what is owed against them: no
            # moment shows liabilities without the wallets that cover them.
            if second % _LEDGER_EVERY == 0:
                drafts += venue.reserve_drafts(now)
            if second % _WALLETS_EVERY == 0:
                if second:
                    venue.drift_hot(rng)
                drafts += venue.wallet_drafts(now)
            if second % _LEDGER_EVERY == 0:
                drafts += venue.liability_drafts(now)
            while venue.next_trade < now + timedelta(seconds=1):
                drafts.append(venue.trade(rng))
        yield from ids.emit(drafts)
        second += 1


def steady_phases(
    start: datetime,
    seed: int,
    *,
    exchanges: int = 3,
    duration: float | None = 600.0,
    run: str | None = None,
) -> list[Phase]:
    """One phase: everything in order."""
    del seed, duration, run  # the phase does not depend on them
    expect = (
        f"{exchanges} exchange(s) trading normally, ≈97% of customer value cold, "
        "fund ¥3 to 8 bn against the ¥2 bn minimum floor → every rule ok"
    )
    return [Phase(1, "steady", event_time(start), expect)]


# -- dmm-incident -------------------------------------------------------------

_DMM_ASSETS: Final = ("BTC", "ETH", "XRP", "USDT")


# The story, in seconds after the start. The phases that breach a rule holding a
# new breach for its `breach_for` (5 minutes for jp.cold_storage and jp.segregation)
# last six minutes, so the breach is published before the next phase ends it.
_SURGE_AT: Final = 60
_TRANSFER_AT: Final = 130
_DRAIN_AT: Final = 490
_TOP_UP_AT: Final = 850
_QUIET_AT: Final = 900
_FIRST_LIABILITIES_AT: Final = 5  # seconds after the opening snapshots
_QUIET_EVERY: Final = 300

_DMM_FUND: Final = Decimal(6_000_000_000)
# DMM's group funding after the 2024 loss was ¥55 bn; with the insurance it
# clears even the ¥40 bn top of the floor by 40%.
_DMM_FUND_TOPPED_UP: Final = Decimal(55_000_000_000)
_DMM_COVERAGE: Final = Decimal(1_000_000_000)
_CALM_FUND: Final = Decimal(4_000_000_000)
_CALM_COVERAGE: Final = Decimal(500_000_000)
# Moved from cold to hot before the theft, as before large withdrawals.
_BTC_TO_HOT: Final = Decimal(4_000)


@dataclass(frozen=True)
class _DmmPlan:
    """The seed-drawn numbers of the dmm-incident story."""

    start: datetime
    backfill: tuple[tuple[datetime, Decimal], ...]
    calm_backfill: tuple[tuple[datetime, Decimal], ...]
    surge: tuple[tuple[datetime, Decimal], ...]
    end: datetime

    def at(self, seconds: int) -> datetime:
        return self.start + timedelta(seconds=seconds)


def _dmm_plan(start: datetime, seed: int, settle_minutes: int) -> _DmmPlan:
    if settle_minutes < 0:
        raise ValueError("settle_minutes must not be negative")
    start = event_time(start)
    # A separate stream for the plan, so tuning the per-second noise later
    # does not move the story's numbers.
    rng = random.Random(f"dmm-plan-{seed}")
    history_start = start - VOLUME_WINDOW
    # Half-hourly aggregates over the 24 h before the start: ≈¥0.5 tn, so the
    # floor opens at or near its ¥2 bn minimum whether it is 0.05% of 24 h
    # volume (¥2 bn, clamped) or 0.5% of 30-day volume (the built-in jp pack:
    # ≈¥2.5 bn); either way comfortably under the ¥6 bn fund.
    backfill = tuple(
        (
            history_start + timedelta(minutes=15 + 30 * k),
            _draw(rng, Decimal(9_900_000_000), Decimal(10_900_000_000), Decimal(1_000_000)),
        )
        for k in range(48)
    )
    calm_backfill = tuple(
        (
            history_start + timedelta(minutes=20 + 30 * k),
            _draw(rng, Decimal(4_000_000_000), Decimal(6_000_000_000), Decimal(1_000_000)),
        )
        for k in range(48)
    )
    # 30 aggregates of ≈¥600 bn, two seconds apart: ≈¥18 tn in a minute, so
    # 0.05% of it (≈¥9 bn) is well above fund + insurance (¥7 bn); at 0.5% the
    # floor hits its ¥40 bn top.
    surge = tuple(
        (
            start + timedelta(seconds=_SURGE_AT + 2 * k),
            _draw(rng, Decimal(550_000_000_000), Decimal(650_000_000_000), Decimal(1_000_000)),
        )
        for k in range(30)
    )
    end = start + timedelta(seconds=_QUIET_AT + 60 * settle_minutes)
    return _DmmPlan(start, backfill, calm_backfill, surge, end)


def _dmm_book() -> list[_Wallet]:
    """dmm's wallets in phase 1: ≈96.5% of customer value cold."""
    return [
        _Wallet("btc-hot-1", "BTC", "hot", "customer", Decimal(1_400)),
        _Wallet("btc-cold-1", "BTC", "cold", "customer", Decimal(20_000)),
        _Wallet("btc-cold-2", "BTC", "cold", "customer", Decimal(18_600)),
        _Wallet("btc-guarantee-1", "BTC", "cold", "guarantee", Decimal(1_470)),
        _Wallet("btc-house-1", "BTC", "cold", "house", Decimal(5_000)),
        _Wallet("eth-hot-1", "ETH", "hot", "customer", Decimal(3_000)),
        _Wallet("eth-cold-1", "ETH", "cold", "customer", Decimal(97_000)),
        _Wallet("eth-guarantee-1", "ETH", "cold", "guarantee", Decimal(3_150)),
        _Wallet("xrp-hot-1", "XRP", "hot", "customer", Decimal(12_000_000)),
        _Wallet("xrp-cold-1", "XRP", "cold", "customer", Decimal(288_000_000)),
        _Wallet("xrp-guarantee-1", "XRP", "cold", "guarantee", Decimal(12_600_000)),
        _Wallet("usdt-hot-1", "USDT", "hot", "customer", Decimal(3_500_000)),
        _Wallet("usdt-cold-1", "USDT", "cold", "customer", Decimal(96_500_000)),
        _Wallet("usdt-guarantee-1", "USDT", "cold", "guarantee", Decimal(3_675_000)),
    ]


def _calm_book() -> list[_Wallet]:
    return [
        _Wallet("btc-hot-1", "BTC", "hot", "customer", Decimal(60)),
        _Wallet("btc-cold-1", "BTC", "cold", "customer", Decimal(1_940)),
        _Wallet("btc-guarantee-1", "BTC", "cold", "guarantee", Decimal(63)),
        _Wallet("eth-hot-1", "ETH", "hot", "customer", Decimal(600)),
        _Wallet("eth-cold-1", "ETH", "cold", "customer", Decimal(19_400)),
        _Wallet("eth-guarantee-1", "ETH", "cold", "guarantee", Decimal(630)),
    ]


def _customer_totals(book: list[_Wallet]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for wallet in book:
        if wallet.holder == "customer":
            totals[wallet.asset] = totals.get(wallet.asset, Decimal(0)) + wallet.balance
    return totals


def _cold_share(book: list[_Wallet], prices: dict[str, Decimal]) -> Decimal:
    customer = [wallet for wallet in book if wallet.holder == "customer"]
    total = sum((w.balance * prices[w.asset] for w in customer), Decimal(0))
    cold = sum((w.balance * prices[w.asset] for w in customer if w.custody == "cold"), Decimal(0))
    return cold / total


def _grouped(amount: Decimal) -> str:
    """``4,502.9`` for labels."""
    return f"{Decimal(format_decimal(amount)):,}"


def _percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('0.1'))}%"


def dmm_incident(start: datetime, seed: int, *, settle_minutes: int = 60) -> Iterator[Record]:
    """The DMM Bitcoin story for ``dmm``, beside the healthy ``calm``.

    `start` is when the live part begins; 48 half-hourly trade aggregates
    over the 24 h before it give the volume window its history. The phases
    (`dmm_incident_phases`) follow at +60 s, +130 s, +490 s, +850 s and
    +900 s; a quiet stretch of `settle_minutes` with snapshots every five
    minutes ends the run, so drops leave any rolling window of up to that
    length and every rule can settle back to ok.
    """
    plan = _dmm_plan(start, seed, settle_minutes)
    rng = random.Random(seed)
    ids = _EventIds(_run_tag("dmm", seed, plan.start))
    market = _PriceWalk(_DMM_ASSETS)
    dmm = _dmm_book()
    calm = _calm_book()
    dmm_liabilities = {a: q * _LIABILITY_SHARE for a, q in _customer_totals(dmm).items()}
    calm_liabilities = {a: q * _LIABILITY_SHARE for a, q in _customer_totals(calm).items()}
    dmm_policy = _annual_policy("dmm-cyber-1", _DMM_COVERAGE, "JPY", plan.start)
    calm_policy = _annual_policy("calm-cyber-1", _CALM_COVERAGE, "JPY", plan.start)
    fund = _DMM_FUND

    def wallet(book: list[_Wallet], name: str) -> _Wallet:
        return next(w for w in book if w.wallet == name)

    def reserves(now: datetime) -> list[Record]:
        return [
            dmm_policy.draft("dmm", now),
            _fund("dmm", now, fund),
            calm_policy.draft("calm", now),
            _fund("calm", now, _CALM_FUND),
        ]

    def liabilities(now: datetime) -> list[Record]:
        drafts = [_liability("dmm", now, a, q) for a, q in dmm_liabilities.items()]
        return drafts + [_liability("calm", now, a, q) for a, q in calm_liabilities.items()]

    def snapshots(now: datetime) -> list[Record]:
        return [w.draft("dmm", now) for w in _snapshot_order(dmm)] + [
            w.draft("calm", now) for w in _snapshot_order(calm)
        ]

    history = [_trade("dmm", ts, "BTC/JPY", notional, "JPY") for ts, notional in plan.backfill]
    history += [
        _trade("calm", ts, "BTC/JPY", notional, "JPY") for ts, notional in plan.calm_backfill
    ]
    yield from ids.emit(history)

    # Story-time events: (seconds after start, ordinal) -> change to apply.
    def move(book: list[_Wallet], name: str, delta: Decimal) -> Callable[[datetime], Record]:
        def apply(now: datetime) -> Record:
            target = wallet(book, name)
            target.balance += delta
            return target.draft("dmm", now)

        return apply

    def top_up_fund(now: datetime) -> Record:
        nonlocal fund
        fund = _DMM_FUND_TOPPED_UP
        return _fund("dmm", now, fund)

    restore_hot = DMM_STOLEN_BTC - _BTC_TO_HOT
    story: dict[int, Callable[[datetime], Record]] = {
        # Phase 3: guarantee first, then hot up, then cold down, so no
        # snapshot in between shows a guarantee gap or a customer shortfall.
        _TRANSFER_AT: move(dmm, "btc-guarantee-1", _BTC_TO_HOT * _GUARANTEE_MARGIN),
        _TRANSFER_AT + 1: move(dmm, "btc-house-1", -_BTC_TO_HOT * _GUARANTEE_MARGIN),
        _TRANSFER_AT + 2: move(dmm, "btc-hot-1", _BTC_TO_HOT),
        _TRANSFER_AT + 3: move(dmm, "btc-cold-1", -_BTC_TO_HOT),
        # Phase 4: one transfer out of the hot wallet.
        _DRAIN_AT: move(dmm, "btc-hot-1", -DMM_STOLEN_BTC),
        # Phase 5: money first, then the replacement BTC into cold, then the
        # hot wallet back to its usual level from cold, then the guarantee.
        _TOP_UP_AT: top_up_fund,
        _TOP_UP_AT + 1: move(dmm, "btc-cold-2", DMM_STOLEN_BTC),
        _TOP_UP_AT + 2: move(dmm, "btc-hot-1", restore_hot),
        _TOP_UP_AT + 3: move(dmm, "btc-cold-1", -restore_hot),
        _TOP_UP_AT + 4: move(dmm, "btc-guarantee-1", -_BTC_TO_HOT * _GUARANTEE_MARGIN),
        _TOP_UP_AT + 5: move(dmm, "btc-house-1", _BTC_TO_HOT * _GUARANTEE_MARGIN),
    }
    surge = dict(plan.surge)

    next_trade = {"dmm": plan.start, "calm": plan.start + timedelta(milliseconds=700)}
    quiet_end = int((plan.end - plan.start).total_seconds())
    quiet = list(range(_QUIET_AT, quiet_end + 1, _QUIET_EVERY))
    if quiet[-1] != quiet_end:
        quiet.append(quiet_end)
    for second in [*range(_QUIET_AT), *quiet]:
        now = plan.at(second)
        busy = second < _QUIET_AT
        drafts: list[Record] = []
        if not busy or second % 10 == 0:
            if second:
                market.step(rng)
            drafts += market.drafts(now)
        # Reserves, then holdings, then what is owed against them (as in steady).
        ledger_due = not busy or second % 60 == 0
        if ledger_due:
            drafts += reserves(now)
        if not busy or second % 30 == 0:
            drafts += snapshots(now)
        # The first liabilities follow the opening snapshots by a few seconds, as a
        # reconciliation follows the wallet report: a live worker reads the wallet and
        # ledger topics independently and must see the holdings before what is owed.
        if (ledger_due and second != 0) or second == _FIRST_LIABILITIES_AT:
            drafts += liabilities(now)
        if second in story:
            drafts.append(story[second](now))
        if now in surge:
            drafts.append(_trade("dmm", now, "BTC/JPY", surge[now], "JPY"))
        if busy:
            for exchange, low, high, gap in (
                ("dmm", 1_000, 100_000, (1_000, 4_000)),
                ("calm", 100, 20_000, (3_000, 8_000)),
            ):
                while next_trade[exchange] < now + timedelta(seconds=1):
                    notional = Decimal(_draw_int(rng, low, high) * 1_000)
                    drafts.append(
                        _trade(exchange, next_trade[exchange], "BTC/JPY", notional, "JPY")
                    )
                    next_trade[exchange] += timedelta(milliseconds=_draw_int(rng, *gap))
        else:
            # One aggregate per quiet tick keeps the trade feed alive.
            drafts.append(_trade("dmm", now, "BTC/JPY", Decimal(5_000_000_000), "JPY"))
            drafts.append(_trade("calm", now, "BTC/JPY", Decimal(200_000_000), "JPY"))
        yield from ids.emit(drafts)


def dmm_incident_phases(start: datetime, seed: int, *, settle_minutes: int = 60) -> list[Phase]:
    """The phases of `dmm_incident`, with the numbers they are sized on."""
    plan = _dmm_plan(start, seed, settle_minutes)
    history = sum((n for _, n in plan.backfill), Decimal(0))
    surge = sum((n for _, n in plan.surge), Decimal(0))
    available = _DMM_FUND + _DMM_COVERAGE
    topped_up = _DMM_FUND_TOPPED_UP + _DMM_COVERAGE
    # Cold shares at the opening prices (the walk moves them by well under 1%).
    prices = dict(_OPENING_PRICES)
    book = _dmm_book()
    healthy_share = _cold_share(book, prices)
    for w in book:
        if w.wallet == "btc-hot-1":
            w.balance += _BTC_TO_HOT
        elif w.wallet == "btc-cold-1":
            w.balance -= _BTC_TO_HOT
    moved_share = _cold_share(book, prices)
    hot = next(w for w in book if w.wallet == "btc-hot-1")
    hot_before = hot.balance
    hot.balance -= DMM_STOLEN_BTC
    drained_share = _cold_share(book, prices)
    stolen_value = DMM_STOLEN_BTC * prices["BTC"]
    btc_liability = _customer_totals(_dmm_book())["BTC"] * _LIABILITY_SHARE
    btc_left = _customer_totals(book)["BTC"]
    return [
        Phase(
            1,
            "healthy",
            plan.start - VOLUME_WINDOW,
            f"dmm: fund {_bn(_DMM_FUND)} + insurance {_bn(_DMM_COVERAGE)} against a floor of "
            f"{_bn(floor_for(history))} to {_bn(floor_for(history, PACK_FLOOR_RATE))} "
            f"(24 h volume ≈{_tn(history)}), {_percent(healthy_share)} of customer value "
            "cold; calm alike → every rule ok",
        ),
        Phase(
            2,
            "volume surge",
            plan.at(_SURGE_AT),
            f"30 aggregate trades, ≈{_tn(surge)} in a minute, lift the floor to "
            f"{_bn(floor_for(history + surge))} (0.05% of volume) or "
            f"{_bn(floor_for(history + surge, PACK_FLOOR_RATE))} (0.5%), above fund + "
            f"insurance {_bn(available)} → dmm jp.liability_reserve breach",
        ),
        Phase(
            3,
            "cold-to-hot transfer",
            plan.at(_TRANSFER_AT),
            f"dmm moves {_grouped(_BTC_TO_HOT)} BTC from cold to hot "
            f"(guarantee raised to match): cold share {_percent(moved_share)} "
            "→ jp.cold_storage breach, published once it has lasted its 5-minute breach_for",
        ),
        Phase(
            4,
            "hot-wallet drain",
            plan.at(_DRAIN_AT),
            f"{_grouped(DMM_STOLEN_BTC)} BTC (≈{_bn(stolen_value)}) leave btc-hot-1 in one "
            f"transfer, {_grouped(hot_before)} → "
            f"{_grouped(hot_before - DMM_STOLEN_BTC)} BTC → ops.hot_wallet_drain fires, "
            f"jp.segregation breach after its 5-minute hold "
            f"(customer BTC {_grouped(btc_left)} < owed "
            f"{_grouped(btc_liability)}); cold share rises to "
            f"{_percent(drained_share)} because the hot wallet is empty → jp.cold_storage ok",
        ),
        Phase(
            5,
            "top-up",
            plan.at(_TOP_UP_AT),
            f"fund raised to {_bn(_DMM_FUND_TOPPED_UP)} (+ insurance = {_bn(topped_up)}) against "
            f"a floor of at most {_bn(FLOOR_MAX)}, {_grouped(DMM_STOLEN_BTC)} BTC bought "
            f"back into cold, hot back to its usual level, cold share {_percent(healthy_share)} "
            "→ jp.liability_reserve, jp.segregation, jp.cold_storage ok",
        ),
        Phase(
            6,
            "quiet hour",
            plan.at(_QUIET_AT),
            f"{settle_minutes} min of snapshots every 5 min, no further drops → "
            "ops.hot_wallet_drain clears once the drain leaves its window; every rule ok",
        ),
    ]


# -- eu-venue ----------------------------------------------------------------


def _eu_book() -> list[_Wallet]:
    return [
        _Wallet("btc-hot-1", "BTC", "hot", "customer", Decimal(30)),
        _Wallet("btc-cold-1", "BTC", "cold", "customer", Decimal(970)),
        _Wallet("btc-guarantee-1", "BTC", "cold", "guarantee", Decimal("31.5")),
        _Wallet("eth-hot-1", "ETH", "hot", "customer", Decimal(300)),
        _Wallet("eth-cold-1", "ETH", "cold", "customer", Decimal(9_700)),
        _Wallet("eth-guarantee-1", "ETH", "cold", "guarantee", Decimal(315)),
    ]


EU: Final = "eu-venue"
_EU_PHASE_SECONDS: Final = 60
_EU_OWN_FUNDS: Final = (Decimal(900_000), Decimal(900_000), Decimal(1_500_000))
_EU_OVERHEADS: Final = (Decimal(2_400_000), Decimal(4_800_000), Decimal(4_800_000))
_EU_COVERAGE: Final = Decimal(200_000)
_EU_CLASS_3_MINIMUM: Final = Decimal(150_000)


def eu_venue(start: datetime, seed: int) -> Iterator[Record]:
    """A MiCA class-3 venue ``eu-venue``, three minutes of event time.

    Own funds and annual fixed overheads in EUR, trades quoted in EUR, an
    ``EUR`` price in JPY so the monitor can convert. Insurance is sized so
    no status depends on whether it counts.
    """
    start = event_time(start)
    rng = random.Random(seed)
    ids = _EventIds(_run_tag("eu", seed, start))
    market = _PriceWalk(("BTC", "ETH", "EUR"))
    book = _eu_book()
    liabilities = {a: q * _LIABILITY_SHARE for a, q in _customer_totals(book).items()}
    policy = _annual_policy("eu-venue-pi-1", _EU_COVERAGE, "EUR", start)
    next_trade = start
    span = 3 * _EU_PHASE_SECONDS
    for second in range(span + 1):
        now = start + timedelta(seconds=second)
        phase = min(second // _EU_PHASE_SECONDS, 2)
        drafts: list[Record] = []
        if second % 10 == 0:
            if second:
                market.step(rng)
            drafts += market.drafts(now)
        if second % 30 == 0:
            # The requirement before the means to meet it, holdings before
            # liabilities: a first evaluation is unknown, never a false alarm.
            overheads = format_decimal(_EU_OVERHEADS[phase])
            own_funds = format_decimal(_EU_OWN_FUNDS[phase])
            drafts += [
                _ledger("fixed_overheads", EU, now, annual_amount=overheads, currency="EUR"),
                policy.draft(EU, now),
                _ledger("own_funds", EU, now, amount=own_funds, currency="EUR"),
            ]
            drafts += [w.draft("eu-venue", now) for w in _snapshot_order(book)]
            drafts += [_liability("eu-venue", now, a, q) for a, q in liabilities.items()]
        while next_trade < now + timedelta(seconds=1) and second < span:
            market_name = "BTC/EUR" if rng.random() < 0.7 else "ETH/EUR"
            notional = _draw(rng, Decimal(500), Decimal(250_000), Decimal("0.01"))
            drafts.append(_trade("eu-venue", next_trade, market_name, notional, "EUR"))
            next_trade += timedelta(milliseconds=_draw_int(rng, 2_000, 6_000))
        yield from ids.emit(drafts)


def eu_venue_phases(start: datetime, seed: int) -> list[Phase]:
    """Own funds against max(class-3 minimum, ¼ of fixed overheads), per phase."""
    del seed
    start = event_time(start)

    def requirement(phase: int) -> Decimal:
        return max(_EU_CLASS_3_MINIMUM, _EU_OVERHEADS[phase] / 4)

    def eur(amount: Decimal) -> str:
        return f"€{_grouped(amount)}"

    cover = f"(+ {eur(_EU_COVERAGE)} insurance, which does not change the outcome)"
    names = ("capitalised", "overheads restated", "recapitalised")
    verdicts = ("ok", "breach", "ok")
    phases = []
    for phase in range(3):
        expect = (
            f"own funds {eur(_EU_OWN_FUNDS[phase])} {cover} against "
            f"max({eur(_EU_CLASS_3_MINIMUM)}, ¼ of {eur(_EU_OVERHEADS[phase])}) = "
            f"{eur(requirement(phase))} → eu.mica_own_funds {verdicts[phase]}"
        )
        starts = start + timedelta(seconds=phase * _EU_PHASE_SECONDS)
        phases.append(Phase(phase + 1, names[phase], starts, expect))
    return phases


# -- registry ----------------------------------------------------------------

SCENARIOS: Final[dict[str, Scenario]] = {
    "steady": Scenario(
        "steady",
        "healthy exchanges ex-01… trading BTC, ETH, XRP, USDT; every rule ok",
        steady,
        steady_phases,
        ("exchanges", "duration", "run"),
    ),
    "dmm-incident": Scenario(
        "dmm-incident",
        "dmm: healthy, volume surge, cold-to-hot transfer, 4,502.9 BTC drain, top-up "
        "(with a healthy peer calm)",
        dmm_incident,
        dmm_incident_phases,
        ("settle_minutes",),
    ),
    "eu-venue": Scenario(
        "eu-venue",
        "a MiCA venue whose overheads are restated (breach), then recapitalised",
        eu_venue,
        eu_venue_phases,
    ),
}


def _scenario(name: str, params: dict[str, Any]) -> Scenario:
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown scenario {name!r}; known: {known}") from None
    unknown = sorted(set(params) - set(scenario.params))
    if unknown:
        accepted = ", ".join(scenario.params) or "none"
        raise ValueError(
            f"scenario {name!r} takes no parameter {', '.join(unknown)} (it takes: {accepted})"
        )
    return scenario


def generate(name: str, start: datetime, seed: int, **params: Any) -> list[Record]:
    """All records of a named scenario, in event-time order."""
    if name == "steady" and params.get("duration", 600.0) is None:
        raise ValueError("generate() needs a finite duration; iterate steady() instead")
    return list(_scenario(name, params).records(start, seed, **params))


def start_ending_at(name: str, end: datetime, seed: int, **params: Any) -> datetime:
    """The start at which a named scenario's last record is dated `end`.

    A worker refuses events dated ahead of its wall clock (by more than
    RESERVE_MONITOR_MAX_FUTURE_SECONDS), so a scenario sent to Kafka faster than
    it happened must lie in the past: started this long ago, it ends at `end`.
    """
    end = event_time(end)
    last = max((record.ts for record in generate(name, end, seed, **params)), default=end)
    return end - (last - end)


def phases(name: str, start: datetime, seed: int, **params: Any) -> list[Phase]:
    """The phases of a named scenario, in time order."""
    return _scenario(name, params).phases(start, seed, **params)


def phase_of(record: Record, scenario_phases: Iterable[Phase]) -> Phase | None:
    """The phase `record` falls in (the last one begun by its event time)."""
    current = None
    for phase in scenario_phases:
        if phase.starts <= record.ts:
            current = phase
    return current
