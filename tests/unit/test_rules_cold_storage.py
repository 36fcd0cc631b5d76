"""jp.cold_storage through the engine: the 95% line, its shortfall, and when it is unknown."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from monitor.core.engine import Engine
from monitor.core.policy import load_policy, parse_policy
from monitor.core.status import Status
from tests.unit.builders import (
    assessment_of,
    at,
    changes,
    feed,
    instant_engine,
    moment,
    price,
    reserve_fund,
    status_of,
    wallet,
)

RULE = "jp.cold_storage"
D = Decimal


def split(cold: str, hot: str, *, when: Any = None, asset: str = "BTC") -> list[dict]:
    """Customer crypto of ``asset`` split between one cold and one hot wallet."""
    moment = {} if when is None else {"when": when}
    return [
        wallet(cold, asset=asset, custody="cold", wallet_id=f"{asset}-cold", **moment),
        wallet(hot, asset=asset, custody="hot", wallet_id=f"{asset}-hot", **moment),
    ]


def measured(e: Engine) -> Any:
    return assessment_of(e, RULE)


@pytest.mark.parametrize(
    ("cold", "hot", "status"),
    [
        ("94.99", "5.01", Status.BREACH),  # just under 95%
        ("95", "5", Status.WARNING),  # exactly 95%: at the line, under the 96% warning
        ("95.01", "4.99", Status.WARNING),
        ("96", "4", Status.OK),  # exactly the warning level
        ("100", "0", Status.OK),
    ],
)
def test_the_95_percent_boundary(cold: str, hot: str, status: Status) -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), *split(cold, hot))
    assert status_of(e, RULE) is status
    assert measured(e).ratio == D(cold) / (D(cold) + D(hot))


def test_shortfall_is_the_value_to_move_from_hot_to_cold() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), *split("90", "10"))
    a = measured(e)
    # total 1 bn; 95% of it is 950 m; 900 m is cold
    assert a.required == D("950000000")
    assert a.available == D("900000000")
    assert a.shortfall == D("50000000")
    assert a.shortfall == D("0.95") * (a.available + D("100000000")) - a.available
    assert "move 50,000,000 JPY of crypto" in a.reason


def test_values_add_across_assets_at_their_prices() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("10000000", asset="BTC"),
        price("500000", asset="ETH"),
        *split("9", "1", asset="BTC"),  # 90 m cold, 10 m hot
        *split("200", "0", asset="ETH"),  # 100 m cold
    )
    assert measured(e).ratio == D("190") / D("200")
    assert measured(e).shortfall == 0


def test_guarantee_and_house_holdings_are_not_customer_crypto() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("1"),
        *split("95", "5"),
        wallet("1000", custody="hot", holder="house", wallet_id="house"),
        wallet("1000", custody="hot", holder="guarantee", wallet_id="guarantee"),
    )
    assert measured(e).ratio == D("0.95")


def test_a_price_drop_of_the_cold_asset_can_breach() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("100", asset="BTC"),
        price("100", asset="ETH"),
        *split("96", "0", asset="BTC"),
        *split("0", "4", asset="ETH"),
    )
    assert status_of(e, RULE) is Status.OK
    (step,) = feed(e, price("50", asset="BTC", when=at(minutes=1)))
    assert [(c.previous, c.status) for c in step.changes if c.rule == RULE] == [
        (Status.OK, Status.BREACH)
    ]


def test_unknown_while_a_held_asset_has_no_price() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), *split("96", "4"), wallet("1", asset="ETH", wallet_id="eth"))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert measured(e).evidence["unpriced"] == ["ETH"]
    (step,) = feed(e, price("500000", asset="ETH", when=at(minutes=1)))
    assert status_of(e, RULE) is Status.OK
    assert [(c.previous, c.status) for c in step.changes if c.rule == RULE] == [
        (Status.UNKNOWN, Status.OK)
    ]


def test_unknown_without_any_wallet() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), reserve_fund(3_000_000_000))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "wallet_balances" in measured(e).reason


def test_unknown_without_customer_crypto() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), wallet("10", holder="house"))
    assert status_of(e, RULE) is Status.UNKNOWN


def test_unknown_once_wallets_are_older_than_max_wallet_age() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), *split("96", "4"))
    moment(e, at(hours=1))  # exactly the allowed age
    assert status_of(e, RULE) is Status.OK
    step = moment(e, at(hours=1, microseconds=1))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "wallet_balances" in measured(e).reason
    assert [(c.previous, c.status) for c in step.changes if c.rule == RULE] == [
        (Status.OK, Status.UNKNOWN)
    ]


def test_unknown_once_prices_are_older_than_max_price_age() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), *split("96", "4"))
    feed(e, *split("96", "4", when=at(hours=1, seconds=1)))  # wallets fresh, prices not
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "prices" in measured(e).reason


def test_one_asset_s_stale_price_is_enough_while_others_stay_fresh() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), price("500000", asset="ETH"))
    feed(e, *split("96", "4"), *split("960", "40", asset="ETH"))
    assert status_of(e, RULE) is Status.OK
    # the ETH prices go on, the BTC feed stops: BTC is valued at a price an hour old
    later = at(hours=1, seconds=1)
    feed(e, price("510000", asset="ETH", when=later), *split("96", "4", when=later))
    feed(e, *split("960", "40", asset="ETH", when=later))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert measured(e).reason == (
        "the newest market.prices price of BTC, which values dmm's holdings, is 3601s old, "
        "older than the 1h this rule allows"
    )
    assert measured(e).evidence["asset"] == "BTC"
    feed(e, price("10100000", when=at(hours=1, seconds=2)))  # BTC priced again
    assert status_of(e, RULE) is Status.OK


def test_status_changes_once_per_change_not_per_event() -> None:
    e = instant_engine(load_policy())
    steps = feed(e, price("1"), *split("96", "4"))
    for minute in range(1, 6):
        steps += feed(e, *split("97", "3", when=at(minutes=minute)))
    assert [(c.previous, c.status) for c in changes(steps) if c.rule == RULE] == [
        (Status.UNKNOWN, Status.OK)
    ]


def test_a_stricter_policy_share_is_honoured() -> None:
    policy = parse_policy(
        {"packs": {"jp": {"cold_storage": {"minimum_share": "0.98", "warning_share": "0.99"}}}}
    )
    e = instant_engine(policy)
    feed(e, price("1"), *split("97", "3"))
    assert status_of(e, RULE) is Status.BREACH
    assert measured(e).shortfall == D("1")


def test_hysteresis_keeps_a_breach_until_the_share_clears_the_line_by_the_margin() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), *split("94", "6"))
    assert status_of(e, RULE) is Status.BREACH
    feed(e, *split("95.1", "4.9", when=at(minutes=1)))  # 0.951: over 0.95, under 0.952
    assert status_of(e, RULE) is Status.BREACH
    feed(e, *split("95.2", "4.8", when=at(minutes=2)))  # clears 0.95 by 0.002
    assert status_of(e, RULE) is Status.WARNING
    assert measured(e).shortfall == 0
    moment(e, at(minutes=2) + timedelta(seconds=1))
    assert status_of(e, RULE) is Status.WARNING
