"""jp.liability_reserve through the engine: floor, clamps, insurance, currencies, staleness."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from monitor.core.engine import Engine, Outcome
from monitor.core.errors import PolicyError
from monitor.core.policy import load_policy, parse_policy
from monitor.core.state import AWAITING_TRADES_KEPT
from monitor.core.status import Status
from tests.unit.builders import (
    T0,
    assessment_of,
    at,
    changes,
    event,
    feed,
    instant_engine,
    insurance,
    liability,
    moment,
    price,
    reserve_fund,
    status_of,
    trade,
    wallet,
)

RULE = "jp.liability_reserve"
D = Decimal
BILLION = 10**9


def engine(**params: Any) -> Engine:
    """An engine on the built-in jp pack, with ``params`` of liability_reserve overridden."""
    if not params:
        return instant_engine(load_policy())
    return instant_engine(parse_policy({"packs": {"jp": {"liability_reserve": params}}}))


def measured(e: Engine) -> Any:
    return assessment_of(e, RULE)


# -- the floor ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume", "floor"),
    [
        (0, 2 * BILLION),  # no trading: the minimum floor
        (100 * BILLION, 2 * BILLION),  # 0.5% = 0.5 bn, clamped up
        (400 * BILLION, 2 * BILLION),  # 0.5% = exactly the minimum
        (1_000 * BILLION, 5 * BILLION),  # 0.5% = 5 bn, inside the clamp
        (8_000 * BILLION, 40 * BILLION),  # exactly the maximum
        (10_000 * BILLION, 40 * BILLION),  # 0.5% = 50 bn, clamped down
    ],
)
def test_floor_is_the_volume_rate_clamped_to_min_and_max(volume: int, floor: int) -> None:
    e = engine()
    feed(e, trade(volume), reserve_fund(6 * BILLION))
    assert measured(e).required == floor
    assert measured(e).ratio == D(6 * BILLION) / D(floor)


def test_volume_sums_every_trade_in_the_window() -> None:
    e = engine()
    feed(
        e,
        trade(600 * BILLION, when=T0),
        trade(300 * BILLION, when=at(days=10)),
        trade(100 * BILLION, when=at(days=29, hours=23)),
        reserve_fund(6 * BILLION, when=at(days=29, hours=23)),
    )
    assert measured(e).required == 5 * BILLION
    assert measured(e).evidence["trading_volume"] == "1000000000000"


def test_volume_that_leaves_the_window_lowers_the_floor() -> None:
    e = engine()
    feed(e, trade(1_000 * BILLION, when=T0), reserve_fund(6 * BILLION, when=T0))
    assert measured(e).required == 5 * BILLION
    feed(e, reserve_fund(6 * BILLION, when=at(days=29)))  # keep the ledger fresh
    feed(e, trade(0, when=at(days=29, hours=23)))  # and the trades feed
    moment(e, at(days=30) - timedelta(microseconds=1))
    assert measured(e).required == 5 * BILLION
    moment(e, at(days=30))
    assert measured(e).required == 2 * BILLION


def test_trades_in_another_currency_count_at_its_price() -> None:
    e = engine()
    feed(
        e,
        price("150", asset="USDT"),
        trade(10 * BILLION, currency="USDT"),  # 1.5 trillion yen
        reserve_fund(8 * BILLION),
    )
    assert measured(e).required == D("7500000000")
    assert measured(e).evidence["trading_volume"] == "1500000000000"
    assert status_of(e, RULE) is Status.WARNING  # 8 / 7.5 is under 1.2


def test_trades_waiting_for_their_currency_s_first_price_leave_the_floor_unknown() -> None:
    e = engine()
    feed(e, reserve_fund(8 * BILLION), trade(10 * BILLION, currency="USDT", when=at(minutes=1)))
    assert status_of(e, RULE) is Status.UNKNOWN  # the volume the floor grows with is partial
    assert measured(e).reason == (
        "1 trade of dmm in USDT waits for a market.prices price: the trading volume the "
        "floor grows with is not complete"
    )
    assert measured(e).evidence == {"awaiting_price": "USDT"}
    feed(e, price("150", asset="USDT", when=at(minutes=2)))
    assert measured(e).required == D("7500000000")  # counted at the price that came
    assert status_of(e, RULE) is Status.WARNING


def test_a_trade_outside_the_window_is_stale_even_without_a_price() -> None:
    e = engine()
    feed(e, reserve_fund(8 * BILLION, when=at(days=40)))
    step = e.apply(event(trade(BILLION, currency="USDT", when=T0)))
    assert step.outcome is Outcome.STALE
    assert e.exchanges["dmm"].awaiting == {}


def test_waiting_trades_are_bounded_and_the_next_one_is_refused_with_its_reason() -> None:
    e = engine()
    for n in range(AWAITING_TRADES_KEPT):
        feed(e, trade(1, currency="XYZ", event_id=f"t-{n}", when=at(seconds=n)))
    step = e.apply(event(trade(1, currency="XYZ", event_id="t-over", when=at(hours=1))))
    assert step.outcome is Outcome.INVALID
    assert step.error == (
        "currency: no market.prices price of XYZ converts the notional into JPY, and "
        f"{AWAITING_TRADES_KEPT} trades of dmm already wait for a price"
    )
    assert e.exchanges["dmm"].awaiting_trades() == AWAITING_TRADES_KEPT


def test_hot_customer_value_component_when_configured() -> None:
    e = engine(hot_customer_value_share="0.5")
    feed(
        e,
        price(10_000_000),
        wallet("1000", custody="hot", wallet_id="btc-hot-1"),  # 10 bn of customer value
        wallet("5000", custody="hot", holder="house", wallet_id="btc-house-1"),  # not counted
        reserve_fund(6 * BILLION),
    )
    assert measured(e).required == 5 * BILLION
    assert measured(e).evidence["floor_components"]["hot_customer_value"] == "5000000000"


def test_hot_customer_value_component_is_unknown_with_an_unpriced_asset() -> None:
    e = engine(hot_customer_value_share="0.5")
    feed(e, wallet("1000", custody="hot", asset="ETH"), reserve_fund(6 * BILLION))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "ETH" in measured(e).reason


# -- insurance ---------------------------------------------------------------------


def test_insurance_in_force_counts_up_to_its_share_of_the_floor() -> None:
    e = engine()
    feed(
        e,
        reserve_fund(BILLION),
        insurance(3 * BILLION, valid_from=at(days=-1), valid_to=at(days=365)),
    )
    # floor 2 bn; insurance capped at 0.5 x 2 bn = 1 bn
    assert measured(e).available == 2 * BILLION
    assert measured(e).evidence["insurance_counted"] == "1000000000"
    assert measured(e).evidence["insurance_cap"] == "1000000000"
    assert measured(e).shortfall == 0


def test_insurance_under_the_cap_counts_in_full() -> None:
    e = engine()
    feed(
        e,
        reserve_fund(BILLION),
        insurance(D("400000000"), valid_from=at(days=-1), valid_to=at(days=365)),
    )
    assert measured(e).available == D("1400000000")
    assert measured(e).shortfall == D("600000000")


def test_several_policies_in_force_add_up_before_the_cap() -> None:
    e = engine()
    window = {"valid_from": at(days=-1), "valid_to": at(days=365)}
    feed(
        e,
        reserve_fund(BILLION),
        insurance(D("300000000"), policy_id="a", **window),
        insurance(D("400000000"), policy_id="b", **window),
    )
    assert measured(e).available == D("1700000000")


def test_insurance_not_yet_in_force_does_not_count() -> None:
    e = engine()
    feed(
        e,
        reserve_fund(BILLION),
        insurance(BILLION, valid_from=at(hours=1), valid_to=at(days=365)),
    )
    assert measured(e).available == BILLION
    assert status_of(e, RULE) is Status.BREACH
    moment(e, at(hours=1))  # valid_from itself is in force
    assert measured(e).available == 2 * BILLION


def test_insurance_stops_counting_at_the_exact_instant_of_valid_to() -> None:
    e = engine()
    feed(
        e,
        reserve_fund(BILLION),
        insurance(BILLION, valid_from=at(days=-1), valid_to=at(hours=1)),
    )
    moment(e, at(hours=1) - timedelta(microseconds=1))
    assert measured(e).available == 2 * BILLION
    moment(e, at(hours=1))
    assert measured(e).available == BILLION
    assert status_of(e, RULE) is Status.BREACH


def test_insurance_in_another_currency_needs_a_price() -> None:
    e = engine()
    feed(
        e,
        reserve_fund(2 * BILLION),
        insurance(1_000_000, currency="USD", valid_from=at(days=-1), valid_to=at(days=365)),
    )
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "USD" in measured(e).reason
    feed(e, price("150", asset="USD"))
    assert measured(e).available == D("2150000000")


# -- the reserve fund --------------------------------------------------------------


def test_unknown_without_a_reserve_fund() -> None:
    e = engine()
    feed(e, trade(BILLION), liability("12000"))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "reserve_fund" in measured(e).reason
    assert measured(e).ratio is None


def test_fund_in_another_currency_is_unknown_without_a_price() -> None:
    e = engine()
    steps = feed(e, reserve_fund(20_000_000, currency="USD"))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "USD" in measured(e).reason
    assert [c for c in changes(steps) if c.rule == RULE] == []


def test_fund_in_another_currency_is_converted_when_its_price_arrives() -> None:
    e = engine()
    feed(e, reserve_fund(20_000_000, currency="USD"))
    (step,) = feed(e, price("150", asset="USD", when=at(minutes=1)))
    # the price alone re-evaluates the exchange whose fund is in USD
    assert [(c.rule, c.previous, c.status) for c in step.changes if c.rule == RULE] == [
        (RULE, Status.UNKNOWN, Status.OK)
    ]
    assert measured(e).available == 3 * BILLION
    feed(e, price("90", asset="USD", when=at(minutes=2)))
    assert measured(e).available == D("1800000000")
    assert status_of(e, RULE) is Status.BREACH


def test_unknown_once_the_ledger_is_older_than_max_ledger_age() -> None:
    e = engine()
    feed(e, reserve_fund(3 * BILLION))
    moment(e, at(hours=36))  # exactly the allowed age: still known
    assert status_of(e, RULE) is Status.OK
    step = moment(e, at(hours=36, seconds=1))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "36h" in measured(e).reason
    assert [(c.previous, c.status) for c in step.changes if c.rule == RULE] == [
        (Status.OK, Status.UNKNOWN)
    ]
    feed(e, reserve_fund(3 * BILLION, when=at(hours=37)))
    assert status_of(e, RULE) is Status.OK


def test_a_stale_fund_stays_unknown_while_other_ledger_figures_arrive() -> None:
    # The rule needs the reserve fund balance. A fresh customer_liability says nothing
    # about the fund: a fund figure older than max_ledger_age must make the rule unknown.
    e = engine()
    feed(e, reserve_fund(3 * BILLION, when=T0), liability("12000", when=at(hours=40)))
    assert status_of(e, RULE) is Status.UNKNOWN


def test_breach_then_ok_after_a_top_up_with_the_right_shortfall() -> None:
    e = engine()
    first = feed(e, trade(1_000 * BILLION), reserve_fund(2 * BILLION))
    assert status_of(e, RULE) is Status.BREACH
    assert measured(e).required == 5 * BILLION
    assert measured(e).available == 2 * BILLION
    assert measured(e).shortfall == 3 * BILLION
    assert measured(e).ratio == D("0.4")
    assert "add 3,000,000,000 JPY" in measured(e).reason
    topped_up = feed(e, reserve_fund(7 * BILLION, when=at(hours=1)))
    assert status_of(e, RULE) is Status.OK
    assert measured(e).shortfall == 0
    assert [(c.previous, c.status) for c in changes(first + topped_up) if c.rule == RULE] == [
        (Status.UNKNOWN, Status.BREACH),
        (Status.BREACH, Status.OK),
    ]


def test_a_top_up_to_just_the_warning_level_stays_warning_by_hysteresis() -> None:
    e = engine()
    feed(e, trade(1_000 * BILLION), reserve_fund(2 * BILLION))
    feed(e, reserve_fund(6 * BILLION, when=at(hours=1)))  # ratio exactly 1.2
    assert status_of(e, RULE) is Status.WARNING
    assert measured(e).shortfall == 0


def test_a_fund_exactly_at_the_floor_is_warning_not_breach() -> None:
    e = engine()
    feed(e, reserve_fund(2 * BILLION))
    assert status_of(e, RULE) is Status.WARNING
    assert measured(e).shortfall == 0
    assert measured(e).ratio == 1


def test_a_policy_accepted_by_the_validator_never_crashes_the_engine() -> None:
    # minimum_floor 0 is accepted by parse_policy; with no volume the floor is 0.
    try:
        policy = parse_policy(
            {"packs": {"jp": {"liability_reserve": {"minimum_floor": "0", "fixed_floor": "0"}}}}
        )
    except PolicyError:
        return  # refusing a zero floor up front is a fine answer too
    e = instant_engine(policy)
    feed(e, reserve_fund(BILLION))
    assert status_of(e, RULE) in set(Status)


def test_a_first_trade_that_leaves_the_floor_alone_still_ages_the_trades_feed() -> None:
    """The direct path for trades (the floor did not move) keeps the trades feed's age
    deadline: a later moment that changes nothing the rule reads still finds it too old,
    as an engine running every rule at every moment does (found by the restart property)."""
    history = [
        reserve_fund(BILLION),  # known, with no trade yet
        trade(BILLION),  # the feed's first trade, at the same moment: the floor stays
        wallet("0", custody="hot", when=at(minutes=361)),  # six hours and a minute later
    ]
    found = []
    for guarded in (True, False):
        e = Engine(load_policy(), guarded=guarded)
        steps = feed(e, *history)
        found.append([(c.status, c.as_of) for c in changes(steps) if c.rule == RULE])
    guarded_changes, every_rule_every_moment = found
    assert guarded_changes == every_rule_every_moment
    assert guarded_changes[-1] == (Status.UNKNOWN, at(minutes=361))
