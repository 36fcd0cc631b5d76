"""The simulator speaks the contract, and its scenarios do what their phases say.

The checks recompute everything from the records themselves (a brute-force
fold of snapshots, prices and trades), never from the scenario's own
internals, so a wrong number in a scenario fails here.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.synthetic import simulator
from monitor.synthetic.scenarios import (
    LEDGER,
    PRICES,
    SCENARIOS,
    TRADES,
    WALLET_BALANCES,
    Phase,
    Record,
    format_decimal,
    format_ts,
    generate,
    phase_of,
    phases,
    restamp,
    start_ending_at,
    steady,
)
from tests.cli import run_without_kafka

START = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
SEED = 7

EXCHANGE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
PLAIN_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
CURRENCY = re.compile(r"^[A-Z]{3,5}$")

COMMON = {"event_id", "exchange", "ts"}
FIELDS = {
    TRADES: COMMON | {"market", "notional", "currency"},
    WALLET_BALANCES: COMMON | {"wallet", "asset", "balance", "custody", "holder"},
    PRICES: {"event_id", "asset", "ts", "price", "currency"},
}
LEDGER_FIELDS = {
    "customer_liability": COMMON | {"type", "asset", "amount"},
    "reserve_fund": COMMON | {"type", "amount", "currency"},
    "insurance_policy": COMMON
    | {"type", "policy_id", "coverage", "currency", "valid_from", "valid_to"},
    "own_funds": COMMON | {"type", "amount", "currency"},
    "fixed_overheads": COMMON | {"type", "annual_amount", "currency"},
}
DECIMAL_FIELDS = {"notional", "balance", "price", "amount", "coverage", "annual_amount"}
TIME_FIELDS = {"ts", "valid_from", "valid_to"}

FLOOR_MIN = Decimal(2_000_000_000)
FLOOR_MAX = Decimal(40_000_000_000)


@dataclass(frozen=True)
class FloorModel:
    """`jp.liability_reserve`: a rate on trailing volume, clamped; insurance capped."""

    rate: Decimal
    window: timedelta
    insurance_max_share: Decimal


# The model the story was specified against, and the built-in jp pack's default.
SPEC = FloorModel(Decimal("0.0005"), timedelta(hours=24), Decimal(1))
PACK = FloorModel(Decimal("0.005"), timedelta(days=30), Decimal("0.5"))
MODELS = pytest.mark.parametrize("model", [SPEC, PACK], ids=["spec-24h", "pack-30d"])
# Clear of a 120% early warning with its hysteresis: plainly ok.
OK_RATIO = Decimal("1.25")


@cache
def records_of(name: str, seed: int = SEED) -> tuple[Record, ...]:
    return tuple(generate(name, START, seed))


@cache
def phases_of(name: str, seed: int = SEED) -> tuple[Phase, ...]:
    return tuple(phases(name, START, seed))


def contract_violations(record: Record) -> list[str]:
    """What a strict consumer of CONTRACT.md section 3 would reject."""
    value = record.value
    errors: list[str] = []
    if record.topic == LEDGER:
        expected = LEDGER_FIELDS.get(value.get("type", ""))
        if expected is None:
            return [f"unknown ledger type {value.get('type')!r}"]
    elif record.topic in FIELDS:
        expected = FIELDS[record.topic]
    else:
        return [f"unknown topic {record.topic!r}"]
    if set(value) != expected:
        errors.append(f"fields {sorted(set(value) ^ expected)} wrong")
    for name, text in value.items():
        if not isinstance(text, str):
            errors.append(f"{name} is not a string")
            continue
        if name in DECIMAL_FIELDS:
            try:
                amount = Decimal(text)
            except InvalidOperation:
                errors.append(f"{name}={text!r} is not a decimal")
                continue
            if not amount.is_finite() or amount < 0 or not PLAIN_DECIMAL.match(text):
                errors.append(f"{name}={text!r} is not a plain non-negative decimal")
        if name in TIME_FIELDS and (
            not RFC3339.match(text) or datetime.fromisoformat(text).tzinfo is None
        ):
            errors.append(f"{name}={text!r} is not RFC 3339 with an offset")
        if name == "currency" and not CURRENCY.match(text):
            errors.append(f"currency {text!r}")
    if datetime.fromisoformat(value["ts"]) != record.ts:
        errors.append("record ts differs from value ts")
    if record.topic == PRICES:
        if record.key != value["asset"] or value["currency"] != "JPY":
            errors.append("a price is keyed by its asset and quoted in JPY")
    else:
        if not EXCHANGE_ID.match(value["exchange"]):
            errors.append(f"exchange id {value['exchange']!r}")
        if record.key != value["exchange"]:
            errors.append("key is not the exchange id")
    if record.topic == WALLET_BALANCES:
        if value["custody"] not in {"hot", "cold"}:
            errors.append(f"custody {value['custody']!r}")
        if value["holder"] not in {"customer", "guarantee", "house"}:
            errors.append(f"holder {value['holder']!r}")
    if value.get("type") == "insurance_policy" and not (
        datetime.fromisoformat(value["valid_from"]) < datetime.fromisoformat(value["valid_to"])
    ):
        errors.append("empty insurance validity")
    return errors


# -- a brute-force view of an exchange at a moment ------------------------------


@dataclass
class Book:
    """Everything known at one event time: newest snapshot wins."""

    at: datetime
    prices: dict[str, Decimal] = field(default_factory=dict)
    wallets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    liabilities: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    funds: dict[str, Decimal] = field(default_factory=dict)
    policies: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    ledger: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    trades: list[dict[str, str]] = field(default_factory=list)

    def wallet_sum(
        self, exchange: str, asset: str | None, holder: str, custody: str | None = None
    ) -> Decimal:
        return sum(
            (
                Decimal(w["balance"])
                for (ex, _), w in self.wallets.items()
                if ex == exchange
                and w["holder"] == holder
                and (asset is None or w["asset"] == asset)
                and (custody is None or w["custody"] == custody)
            ),
            Decimal(0),
        )

    def assets(self, exchange: str) -> set[str]:
        return {w["asset"] for (ex, _), w in self.wallets.items() if ex == exchange}

    def customer_value(self, exchange: str, custody: str | None = None) -> Decimal:
        return sum(
            (
                self.wallet_sum(exchange, asset, "customer", custody) * self.prices[asset]
                for asset in self.assets(exchange)
            ),
            Decimal(0),
        )

    def cold_share(self, exchange: str) -> Decimal:
        return self.customer_value(exchange, "cold") / self.customer_value(exchange)

    def hot_value(self, exchange: str) -> Decimal:
        """Every holder's hot-wallet value: what a drain detector watches."""
        return sum(
            (
                Decimal(w["balance"]) * self.prices[w["asset"]]
                for (ex, _), w in self.wallets.items()
                if ex == exchange and w["custody"] == "hot"
            ),
            Decimal(0),
        )

    def trailing_volume(self, exchange: str, window: timedelta = SPEC.window) -> Decimal:
        """Trades of the trailing window in JPY, other currencies at the latest price."""
        since = self.at - window
        volume = Decimal(0)
        for trade in self.trades:
            if trade["exchange"] == exchange and datetime.fromisoformat(trade["ts"]) > since:
                price = Decimal(1) if trade["currency"] == "JPY" else self.prices[trade["currency"]]
                volume += Decimal(trade["notional"]) * price
        return volume

    def floor(self, exchange: str, model: FloorModel = SPEC) -> Decimal:
        volume = self.trailing_volume(exchange, model.window)
        return min(max(model.rate * volume, FLOOR_MIN), FLOOR_MAX)

    def reserve_ratio(self, exchange: str, model: FloorModel) -> Decimal:
        floor = self.floor(exchange, model)
        insurance = min(self.cover(exchange), model.insurance_max_share * floor)
        return (self.funds[exchange] + insurance) / floor

    def available(self, exchange: str) -> Decimal:
        """Fund plus the insurance valid now."""
        return self.funds[exchange] + self.cover(exchange)

    def cover(self, exchange: str) -> Decimal:
        return sum(
            (
                Decimal(p["coverage"])
                for (ex, _), p in self.policies.items()
                if ex == exchange
                and datetime.fromisoformat(p["valid_from"])
                <= self.at
                < datetime.fromisoformat(p["valid_to"])
            ),
            Decimal(0),
        )

    def segregation_gaps(self, exchange: str) -> dict[str, Decimal]:
        """Assets whose customer holdings fall short of what is owed, and by how much."""
        gaps = {}
        for (ex, asset), owed in self.liabilities.items():
            held = self.wallet_sum(ex, asset, "customer")
            if ex == exchange and held < owed:
                gaps[asset] = owed - held
        return gaps

    def guarantee_gaps(self, exchange: str) -> set[str]:
        return {
            asset
            for asset in self.assets(exchange)
            if self.wallet_sum(exchange, asset, "guarantee")
            < self.wallet_sum(exchange, asset, "customer", "hot")
        }

    def apply(self, record: Record) -> None:
        """Fold one record in; its time becomes the book's time."""
        self.at = record.ts
        value = record.value
        if record.topic == PRICES:
            self.prices[value["asset"]] = Decimal(value["price"])
        elif record.topic == TRADES:
            self.trades.append(value)
        elif record.topic == WALLET_BALANCES:
            self.wallets[value["exchange"], value["wallet"]] = value
        elif value["type"] == "customer_liability":
            self.liabilities[value["exchange"], value["asset"]] = Decimal(value["amount"])
        elif value["type"] == "reserve_fund":
            self.funds[value["exchange"]] = Decimal(value["amount"])
        elif value["type"] == "insurance_policy":
            self.policies[value["exchange"], value["policy_id"]] = value
        elif value["type"] == "own_funds":
            self.ledger[value["exchange"], "own_funds"] = Decimal(value["amount"])
        else:
            self.ledger[value["exchange"], "fixed_overheads"] = Decimal(value["annual_amount"])


def book_at(records: Iterable[Record], at: datetime) -> Book:
    book = Book(at)
    for record in records:
        if record.ts > at:
            break
        book.apply(record)
    book.at = at
    return book


def end_of(name: str, number: int, seed: int = SEED) -> datetime:
    """Event time of the last record of phase `number`."""
    scenario_phases = phases_of(name, seed)
    return max(
        record.ts
        for record in records_of(name, seed)
        if (phase := phase_of(record, scenario_phases)) is not None and phase.number == number
    )


def phase_start(name: str, number: int, seed: int = SEED) -> datetime:
    return next(p.starts for p in phases_of(name, seed) if p.number == number)


# -- contract ------------------------------------------------------------------


def test_the_three_scenarios_are_registered() -> None:
    assert set(SCENARIOS) == {"steady", "dmm-incident", "eu-venue"}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_value_follows_the_contract(name: str) -> None:
    violations = {
        record.value["event_id"]: errors
        for record in records_of(name)
        if (errors := contract_violations(record))
    }
    assert violations == {}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_event_ids_are_unique(name: str) -> None:
    ids = [record.value["event_id"] for record in records_of(name)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_records_come_in_event_time_order(name: str) -> None:
    times = [record.ts for record in records_of(name)]
    assert times == sorted(times)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_prices_precede_every_asset_and_currency_that_needs_them(name: str) -> None:
    priced: set[str] = {"JPY"}
    unpriced = []
    for record in records_of(name):
        value = record.value
        if record.topic == PRICES:
            priced.add(value["asset"])
        needed = {value.get("asset"), value.get("currency")} - {None}
        if record.topic != PRICES and not needed <= priced:
            unpriced.append((value["event_id"], needed - priced))
    assert unpriced == []


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_seed_gives_the_same_records(name: str) -> None:
    assert generate(name, START, SEED) == list(records_of(name))
    assert phases(name, START, SEED) == list(phases_of(name))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_another_seed_gives_other_trades(name: str) -> None:
    def trades(seed: int) -> list[dict[str, str]]:
        return [r.value for r in records_of(name, seed) if r.topic == TRADES]

    assert trades(SEED) != trades(SEED + 1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_record_falls_in_a_phase(name: str) -> None:
    scenario_phases = phases_of(name)
    assert [p.number for p in scenario_phases] == list(range(1, len(scenario_phases) + 1))
    assert [p.starts for p in scenario_phases] == sorted(p.starts for p in scenario_phases)
    seen = {phase_of(record, scenario_phases) for record in records_of(name)}
    assert seen == set(scenario_phases)
    assert all(p.label.startswith(f"phase {p.number}: {p.name} — ") for p in scenario_phases)


def test_a_start_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        generate("dmm-incident", datetime(2024, 5, 31, 13), SEED)


def test_unknown_scenarios_and_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        generate("mt-gox", START, SEED)
    with pytest.raises(ValueError, match="takes no parameter exchanges"):
        generate("dmm-incident", START, SEED, exchanges=2)
    with pytest.raises(ValueError, match="finite duration"):
        generate("steady", START, SEED, duration=None)


def test_a_start_with_another_offset_is_written_in_utc() -> None:
    tokyo = START.astimezone(timezone(timedelta(hours=9)))
    records = generate("eu-venue", tokyo, SEED)
    assert records == list(records_of("eu-venue"))
    assert records[0].value["ts"] == "2024-05-31T13:00:00Z"


def test_decimals_and_times_are_written_plainly() -> None:
    assert format_decimal(Decimal("5E+9")) == "5000000000"
    assert format_decimal(Decimal("4502.90")) == "4502.9"
    assert format_decimal(Decimal("0.000001")) == "0.000001"
    for bad in (Decimal(-1), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError):
            format_decimal(bad)
    assert format_ts(datetime(2024, 5, 31, 13, 26, 0, 123456, tzinfo=UTC)) == (
        "2024-05-31T13:26:00.123Z"
    )
    with pytest.raises(ValueError):
        format_ts(datetime(2024, 5, 31, 13, 26))


# -- steady --------------------------------------------------------------------


def test_steady_names_as_many_exchanges_as_asked() -> None:
    records = generate("steady", START, SEED, exchanges=5, duration=30)
    assert {r.key for r in records if r.topic != PRICES} == {f"ex-0{i}" for i in range(1, 6)}


def test_steady_trades_every_few_seconds_partly_in_usdt() -> None:
    trades = [r for r in records_of("steady") if r.topic == TRADES and r.key == "ex-01"]
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(trades)]
    assert min(gaps) >= 1 and max(gaps) <= 5
    assert {t.value["currency"] for t in trades} == {"JPY", "USDT"}


def test_steady_resends_snapshots_each_minute() -> None:
    wallet_times = {r.ts for r in records_of("steady") if r.topic == WALLET_BALANCES}
    assert wallet_times == {START + timedelta(minutes=m) for m in range(10)}


def test_steady_keeps_every_exchange_healthy_throughout() -> None:
    records = records_of("steady")
    checked = 0
    for minute in range(10):
        book = book_at(records, START + timedelta(minutes=minute, seconds=59))
        for exchange in ("ex-01", "ex-02", "ex-03"):
            assert Decimal("0.96") < book.cold_share(exchange) < Decimal("0.98")
            assert book.guarantee_gaps(exchange) == set()
            assert book.segregation_gaps(exchange) == {}
            for model in (SPEC, PACK):
                assert book.floor(exchange, model) == FLOOR_MIN
                assert book.reserve_ratio(exchange, model) >= OK_RATIO
            assert book.funds[exchange] >= Decimal(3_000_000_000)
            assert book.available(exchange) > book.funds[exchange]  # insurance counts
            assert book.wallet_sum(exchange, "USDT", "house", "hot") > 0
            checked += 1
    assert checked == 30


def test_steady_runs_without_end_when_asked() -> None:
    stream = steady(START, SEED, exchanges=1, duration=None)
    taken = [next(stream) for _ in range(5_000)]
    # Well past the 600 s a finite run defaults to.
    assert taken[-1].ts - START > timedelta(minutes=30)


# -- dmm-incident ----------------------------------------------------------------

DMM = "dmm-incident"


@MODELS
def test_dmm_opens_healthy_with_a_floor_under_the_fund(model: FloorModel) -> None:
    book = book_at(records_of(DMM), end_of(DMM, 1))
    assert book.funds["dmm"] == Decimal(6_000_000_000)
    assert FLOOR_MIN <= book.floor("dmm", model) <= Decimal(3_000_000_000)
    assert book.reserve_ratio("dmm", model) >= OK_RATIO
    assert Decimal("0.96") <= book.cold_share("dmm") <= Decimal("0.97")
    assert book.segregation_gaps("dmm") == {}
    assert book.guarantee_gaps("dmm") == set()


@MODELS
def test_dmm_surge_lifts_the_floor_above_fund_and_insurance(model: FloorModel) -> None:
    records = records_of(DMM)
    before = book_at(records, phase_start(DMM, 2) - timedelta(milliseconds=1))
    after = book_at(records, end_of(DMM, 2))
    assert before.reserve_ratio("dmm", model) >= OK_RATIO
    assert after.reserve_ratio("dmm", model) < Decimal("0.9")
    # Plainly: the rate on trailing volume exceeds fund and insurance together.
    volume = after.trailing_volume("dmm", model.window)
    assert model.rate * volume > after.available("dmm") > after.funds["dmm"]
    surge = [
        r
        for r in records
        if r.topic == TRADES
        and r.key == "dmm"
        and phase_of(r, phases_of(DMM)) == phases_of(DMM)[1]
        and Decimal(r.value["notional"]) >= Decimal(100_000_000_000)
    ]
    assert len(surge) == 30


def test_dmm_moves_btc_to_hot_and_falls_under_the_cold_floor() -> None:
    book = book_at(records_of(DMM), end_of(DMM, 3))
    assert book.cold_share("dmm") < Decimal("0.95")
    assert book.wallet_sum("dmm", "BTC", "customer", "hot") > Decimal("4502.9")
    assert book.guarantee_gaps("dmm") == set()
    assert book.segregation_gaps("dmm") == {}


def test_dmm_loses_4502_9_btc_from_the_hot_wallet_in_one_snapshot() -> None:
    records = records_of(DMM)
    last: dict[str, Decimal] = {}
    drops = []
    for record in records:
        if record.topic == WALLET_BALANCES and record.key == "dmm":
            wallet, balance = record.value["wallet"], Decimal(record.value["balance"])
            if record.value["custody"] == "hot" and balance < last.get(wallet, balance):
                drops.append((record.ts, wallet, last[wallet] - balance))
            last[wallet] = balance
    assert drops == [(phase_start(DMM, 4), "btc-hot-1", Decimal("4502.9"))]
    before = book_at(records, phase_start(DMM, 4) - timedelta(milliseconds=1))
    after = book_at(records, phase_start(DMM, 4))
    assert after.hot_value("dmm") < before.hot_value("dmm") / 2


def test_dmm_drain_leaves_customers_short_though_the_cold_share_recovers() -> None:
    book = book_at(records_of(DMM), end_of(DMM, 4))
    gaps = book.segregation_gaps("dmm")
    assert set(gaps) == {"BTC"}
    assert gaps["BTC"] > Decimal(4_000)
    assert book.cold_share("dmm") >= Decimal("0.96")
    assert book.reserve_ratio("dmm", SPEC) < 1


@MODELS
@pytest.mark.parametrize("number", [5, 6])
def test_dmm_top_up_puts_every_rule_back_in_order(number: int, model: FloorModel) -> None:
    book = book_at(records_of(DMM), end_of(DMM, number))
    assert book.funds["dmm"] == Decimal(55_000_000_000)
    assert book.reserve_ratio("dmm", model) >= OK_RATIO
    assert Decimal("0.96") <= book.cold_share("dmm") <= Decimal("0.97")
    assert book.segregation_gaps("dmm") == {}
    assert book.guarantee_gaps("dmm") == set()


def alarm_windows(name: str) -> dict[str, tuple[datetime, datetime]]:
    """Per check, the stretch of `name` in which dmm is meant to fail it."""
    if name != DMM:
        return {}
    return {
        "cold": (phase_start(DMM, 3), phase_start(DMM, 4)),
        "segregation": (phase_start(DMM, 4), phase_start(DMM, 5) + timedelta(seconds=1)),
    }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_false_alarm_between_two_records(name: str) -> None:
    """A monitor evaluates after every record: no order of a re-send may alarm.

    Cold share stays at or over the 96% early-warning level, guarantees cover
    hot holdings, and holdings cover liabilities, after each single record,
    except where the dmm story means it.
    """
    book = Book(START)
    windows = alarm_windows(name)

    def meant(check: str, at: datetime) -> bool:
        low, high = windows.get(check, (at, at))
        return low <= at < high

    alarms = []
    for record in records_of(name):
        book.apply(record)
        if record.topic not in {WALLET_BALANCES, LEDGER} or "exchange" not in record.value:
            continue
        exchange, at = record.value["exchange"], record.ts
        if (
            book.customer_value(exchange)
            and not meant("cold", at)
            and book.cold_share(exchange) < Decimal("0.96")
        ):
            alarms.append((at, exchange, "cold share", book.cold_share(exchange)))
        if book.guarantee_gaps(exchange):
            alarms.append((at, exchange, "guarantee", book.guarantee_gaps(exchange)))
        if book.segregation_gaps(exchange) and not (exchange == "dmm" and meant("segregation", at)):
            alarms.append((at, exchange, "segregation", book.segregation_gaps(exchange)))
    assert alarms == []


def test_the_drain_is_the_only_fall_in_hot_value() -> None:
    """Outside the theft, hot-wallet value never falls by more than 5% between records."""
    book = Book(START)
    falls = []
    previous: dict[str, Decimal] = {}
    for record in records_of(DMM):
        book.apply(record)
        if record.topic != WALLET_BALANCES:
            continue
        exchange = record.key
        hot = book.hot_value(exchange)
        if hot < previous.get(exchange, hot) * Decimal("0.95"):
            falls.append((record.ts, exchange))
        previous[exchange] = hot
    assert falls == [(phase_start(DMM, 4), "dmm")]


@MODELS
def test_calm_stays_healthy_through_the_whole_story(model: FloorModel) -> None:
    for number in range(1, 7):
        book = book_at(records_of(DMM), end_of(DMM, number))
        assert book.cold_share("calm") >= Decimal("0.96")
        assert book.floor("calm", model) == FLOOR_MIN
        assert book.reserve_ratio("calm", model) >= OK_RATIO
        assert book.segregation_gaps("calm") == {}
        assert book.guarantee_gaps("calm") == set()


def test_dmm_quiet_hour_outlasts_the_drain_with_fresh_snapshots() -> None:
    records = records_of(DMM)
    assert records[-1].ts - phase_start(DMM, 4) > timedelta(hours=1)
    last_snapshot = max(r.ts for r in records if r.topic == WALLET_BALANCES)
    assert last_snapshot == records[-1].ts


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_dmm_story_holds_for_any_seed(seed: int) -> None:
    records = generate(DMM, START, seed)
    story = phases(DMM, START, seed)
    ends = {
        phase.number: max(r.ts for r in records if phase_of(r, story) == phase) for phase in story
    }
    healthy, surged, moved, drained, topped_up = (book_at(records, ends[n]) for n in range(1, 6))
    for model in (SPEC, PACK):
        assert healthy.reserve_ratio("dmm", model) >= OK_RATIO
        assert surged.reserve_ratio("dmm", model) < Decimal("0.9")
        assert topped_up.reserve_ratio("dmm", model) >= OK_RATIO
    assert moved.cold_share("dmm") < Decimal("0.95") <= healthy.cold_share("dmm")
    assert drained.segregation_gaps("dmm").keys() == {"BTC"}
    assert topped_up.cold_share("dmm") >= Decimal("0.95")
    assert topped_up.segregation_gaps("dmm") == {}


# -- eu-venue ------------------------------------------------------------------


@pytest.mark.parametrize(("number", "compliant"), [(1, True), (2, False), (3, True)])
def test_eu_venue_own_funds_against_the_mica_requirement(number: int, compliant: bool) -> None:
    book = book_at(records_of("eu-venue"), end_of("eu-venue", number))
    requirement = max(Decimal(150_000), book.ledger["eu-venue", "fixed_overheads"] / 4)
    own_funds = book.ledger["eu-venue", "own_funds"]
    insurance = sum(Decimal(p["coverage"]) for p in book.policies.values())
    # The outcome must not hang on whether the insurance counts.
    assert (own_funds >= requirement) is compliant
    assert (own_funds + insurance >= requirement) is compliant
    expected = "ok" if compliant else "breach"
    assert phases_of("eu-venue")[number - 1].label.endswith(f"eu.mica_own_funds {expected}")


def test_eu_venue_trades_in_euros_priced_in_yen() -> None:
    records = records_of("eu-venue")
    assert {r.value["currency"] for r in records if r.topic == TRADES} == {"EUR"}
    assert "EUR" in {r.key for r in records if r.topic == PRICES}
    own = {r.value["type"] for r in records if r.topic == LEDGER}
    assert {"own_funds", "fixed_overheads"} <= own
    others = {
        r.value["type"] for name in ("steady", DMM) for r in records_of(name) if r.topic == LEDGER
    }
    assert not others & {"own_funds", "fixed_overheads"}


# -- sinks and command line ---------------------------------------------------------


def test_jsonl_round_trip_keeps_every_record() -> None:
    records = list(records_of(DMM))
    buffer = io.StringIO()
    assert simulator.write_jsonl(records, buffer, topic_prefix="t1.") == len(records)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == len(records)
    first = json.loads(lines[0])
    assert set(first) == {"topic", "key", "value"}
    assert first["topic"] == "t1." + records[0].topic
    assert list(simulator.read_jsonl(lines, topic_prefix="t1.")) == records


def test_jsonl_without_key_takes_the_contract_key() -> None:
    price = next(r for r in records_of(DMM) if r.topic == PRICES)
    line = json.dumps({"topic": price.topic, "value": price.value})
    assert list(simulator.read_jsonl([line])) == [price]
    with pytest.raises(ValueError, match="line 1"):
        list(simulator.read_jsonl(['{"topic": "reserve.alerts", "value": {}}']))


def test_encode_gives_utf8_key_and_json_value() -> None:
    record = records_of(DMM)[0]
    topic, key, value = simulator.encode(record, "p.")
    assert (topic, key) == ("p.exchange.trades", b"dmm")
    assert json.loads(value.decode()) == record.value
    assert b" " not in value


def test_restamp_moves_the_event_time_and_nothing_else() -> None:
    record = records_of("steady")[0]
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    moved = restamp(record, now)
    assert moved.ts == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert moved.value["ts"] == "2026-01-02T03:04:05.678Z"
    assert {**moved.value, "ts": record.value["ts"]} == record.value
    assert contract_violations(moved) == []


def test_live_pacing_spreads_records_and_stops_at_its_limits() -> None:
    record = records_of("steady")[3]
    offset = (record.ts - START).total_seconds()
    assert simulator.live_due(10, record, START, rate=100.0) == pytest.approx(0.1)
    assert simulator.live_due(10, record, START, rate=None) == offset
    assert simulator.live_due(5, record, START, rate=1.0, count=5) is None
    assert simulator.live_due(4, record, START, rate=1.0, count=5) == 4.0
    assert simulator.live_due(30, record, START, rate=10.0, duration=3.0) is None
    assert simulator.live_due(29, record, START, rate=10.0, duration=3.0) == pytest.approx(2.9)


def test_cli_writes_the_scenario_and_prints_its_phases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eu.jsonl"
    argv = ["--scenario", "eu-venue", "--seed", str(SEED), "--start", "2024-05-31T13:00:00Z"]
    assert simulator.main([*argv, "--jsonl", str(out), "--topic-prefix", "x."]) == 0
    expected = io.StringIO()
    simulator.write_jsonl(records_of("eu-venue"), expected, "x.")
    assert out.read_text() == expected.getvalue()
    assert "phase 2: overheads restated" in capsys.readouterr().err


def test_jsonl_takes_no_prefix_from_the_environment_so_replay_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESERVE_MONITOR_TOPIC_PREFIX", "tenant-7.")  # a worker's, for Kafka
    out = tmp_path / "eu.jsonl"
    argv = ["--scenario", "eu-venue", "--seed", str(SEED), "--start", "2024-05-31T13:00:00Z"]
    assert simulator.main([*argv, "--jsonl", str(out)]) == 0
    expected = io.StringIO()
    simulator.write_jsonl(records_of("eu-venue"), expected)
    assert out.read_text() == expected.getvalue()


@pytest.mark.parametrize(
    ("name", "params"),
    [(name, {}) for name in SCENARIOS] + [("dmm-incident", {"settle_minutes": 10})],
)
def test_a_scenario_started_that_long_ago_ends_at_the_given_time(
    name: str, params: dict[str, int]
) -> None:
    """Sent faster than it happened, nothing of it is dated ahead of a worker's clock."""
    end = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    start = start_ending_at(name, end, SEED, **params)
    records = generate(name, start, SEED, **params)
    assert max(record.ts for record in records) == end
    assert records[0].ts < end


def test_cli_plays_a_scenario_that_ends_now_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    assert simulator.main(["--scenario", "dmm-incident", "--jsonl", "-"]) == 0
    after = datetime.now(UTC)
    lines = capsys.readouterr().out.splitlines()
    times = [datetime.fromisoformat(json.loads(line)["value"]["ts"]) for line in lines]
    assert before <= max(times) <= after
    assert min(times) < before - timedelta(hours=24)  # the volume window's history


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenario", "dmm-incident", "--exchanges", "2", "--jsonl", "-"],
        ["--start", "2024-05-31T13:00:00", "--jsonl", "-"],
        ["--live", "--jsonl", "-"],
        ["--live", "--scenario", "dmm-incident"],
        ["--count", "3", "--jsonl", "-"],
        ["--rate", "0", "--jsonl", "-"],
    ],
)
def test_cli_refuses_contradictory_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        simulator.main(argv)
    assert exit_info.value.code == 2


def test_cli_takes_kafka_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-1:9093")
    monkeypatch.setenv("RESERVE_MONITOR_TOPIC_PREFIX", "tenant-a.")
    args = simulator.build_parser().parse_args([])
    assert (args.bootstrap, simulator.topic_prefix(args)) == ("broker-1:9093", "tenant-a.")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    monkeypatch.delenv("RESERVE_MONITOR_TOPIC_PREFIX")
    args = simulator.build_parser().parse_args([])
    assert (args.bootstrap, simulator.topic_prefix(args)) == ("localhost:9092", "")


def test_runs_from_another_start_do_not_share_event_ids() -> None:
    """Otherwise a second run into the same topics would be dropped as duplicates."""
    later = generate("eu-venue", START + timedelta(days=1), SEED)
    ids = {record.value["event_id"] for record in records_of("eu-venue")}
    assert ids.isdisjoint(record.value["event_id"] for record in later)
    assert records_of("eu-venue")[0].value["event_id"] == "p-eu-7-20240531T130000-000001"


def test_with_no_kafka_to_answer_simulate_says_so_in_one_line_and_fails() -> None:
    """Not a traceback, and not a producer left open for the garbage collector to warn
    about: the Kafka client's line, then the command's."""
    port, done = run_without_kafka("simulate", "--scenario", "steady")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(
        f"error: KafkaConnectionError: Unable to bootstrap from [('127.0.0.1', {port}"
    )
    assert "KAFKA_BOOTSTRAP_SERVERS" in last
