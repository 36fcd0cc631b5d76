"""hk.cold_storage and hk.compensation_cover through the engine; one exchange, two regimes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from monitor.core.engine import rules_for
from monitor.core.errors import PolicyError
from monitor.core.money import MONEY_CONTEXT
from monitor.core.policy import load_policy, parse_policy
from monitor.core.status import Status
from tests.unit.builders import (
    EXCHANGE,
    T0,
    Doc,
    assessment_of,
    at,
    changes,
    feed,
    instant_engine,
    insurance,
    liability,
    moment,
    price,
    reserve_fund,
    status_of,
    wallet,
)

COLD = "hk.cold_storage"
COVER = "hk.compensation_cover"
D = Decimal
YEAR = timedelta(days=365)


def hk_policy(**cover: Any) -> Any:
    packs = {"hk": {"compensation_cover": cover}} if cover else {}
    return parse_policy({"packs": packs, "exchanges": {"default": {"packs": ["hk"]}}})


def customer(cold: str, hot: str, *, when: Any = T0, exchange: str = EXCHANGE) -> list[Doc]:
    return [
        wallet(cold, wallet_id="cold", custody="cold", when=when, exchange=exchange),
        wallet(hot, wallet_id="hot", custody="hot", when=when, exchange=exchange),
    ]


def in_force(coverage: str | int, **fields: Any) -> Doc:
    return insurance(coverage, valid_from=T0 - timedelta(days=30), valid_to=T0 + YEAR, **fields)


# -- hk.cold_storage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cold", "hot", "status"),
    [
        ("97.99", "2.01", Status.BREACH),
        ("98", "2", Status.WARNING),  # exactly 98%: at the line, under the 98.4% warning
        ("98.39", "1.61", Status.WARNING),
        ("98.4", "1.6", Status.OK),
    ],
)
def test_hk_cold_storage_is_98_percent(cold: str, hot: str, status: Status) -> None:
    e = instant_engine(hk_policy())
    feed(e, price("1"), *customer(cold, hot))
    assert status_of(e, COLD) is status
    assert assessment_of(e, COLD).ratio == D(cold) / 100


# -- hk.compensation_cover ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fund", "status"),
    [
        ("54.99", Status.BREACH),
        ("55", Status.WARNING),  # exactly the arrangement: under the 120% early warning
        ("65.99", Status.WARNING),
        ("66", Status.OK),
    ],
)
def test_cover_is_half_of_cold_and_all_of_hot(fund: str, status: Status) -> None:
    e = instant_engine(hk_policy())
    feed(e, price("1"), *customer("90", "10"), reserve_fund(fund))
    a = assessment_of(e, COVER)
    assert status_of(e, COVER) is status
    assert a.required == D("55")  # 50% of 90 + 100% of 10
    assert a.available == D(fund)
    assert a.ratio == MONEY_CONTEXT.divide(D(fund), D(55))
    assert a.shortfall == max(D(0), 55 - D(fund))


def test_cover_adds_fund_insurance_in_force_and_cold_guarantee() -> None:
    e = instant_engine(hk_policy())
    feed(
        e,
        price("10"),
        reserve_fund("100"),
        in_force("200"),
        insurance("1000", policy_id="lapsed", valid_from=T0 - 2 * YEAR, valid_to=T0 - YEAR),
        insurance("1000", policy_id="future", valid_from=T0 + YEAR, valid_to=T0 + 2 * YEAR),
        wallet("30", wallet_id="g-cold", custody="cold", holder="guarantee"),
        wallet("1000", wallet_id="g-hot", custody="hot", holder="guarantee"),  # hot: no cover
        wallet("1000", wallet_id="house", custody="cold", holder="house"),  # not set aside
        *customer("100", "10"),
    )
    a = assessment_of(e, COVER)
    assert a.evidence["components"] == {
        "reserve_fund": "100",
        "insurance": "200",
        "guarantee": "300",
    }
    assert a.available == 600
    assert a.required == 500 + 100
    assert set(a.evidence["insurance_not_counted"]) == {"lapsed", "future"}
    assert status_of(e, COVER) is Status.WARNING


def test_components_are_configurable() -> None:
    e = instant_engine(hk_policy(components=["insurance"]))
    feed(e, price("1"), in_force("60"), *customer("90", "10"))  # no fund figure: not needed
    assert assessment_of(e, COVER).evidence["components"] == {"insurance": "60"}
    assert status_of(e, COVER) is Status.WARNING
    e = instant_engine(hk_policy(components=["insurance", "reserve_fund"], cold_share="0.3"))
    feed(e, price("1"), in_force("60"), reserve_fund("10"), *customer("90", "10"))
    assert assessment_of(e, COVER).required == 37
    assert status_of(e, COVER) is Status.OK


def test_insurance_counts_only_while_in_force() -> None:
    e = instant_engine(hk_policy(components=["insurance"]))
    policy = insurance("60", valid_from=T0, valid_to=at(hours=2))
    feed(e, price("1"), policy, *customer("90", "10"))
    assert status_of(e, COVER) is Status.WARNING
    feed(e, price("1", when=at(hours=2)), *customer("90", "10", when=at(hours=2)))
    assert status_of(e, COVER) is Status.BREACH
    assert assessment_of(e, COVER).available == 0


def test_cover_hysteresis() -> None:
    e = instant_engine(hk_policy())
    steps = feed(e, price("1"), *customer("90", "10"), reserve_fund("50"))
    assert status_of(e, COVER) is Status.BREACH
    steps += feed(e, reserve_fund("56", when=at(minutes=1)))  # 1.018: not clear by 0.02
    assert status_of(e, COVER) is Status.BREACH
    steps += feed(e, reserve_fund("56.1", when=at(minutes=2)))  # 1.02
    assert status_of(e, COVER) is Status.WARNING
    steps += feed(e, reserve_fund("67", when=at(minutes=3)))  # 1.218: not clear of 1.2 by 0.02
    assert status_of(e, COVER) is Status.WARNING
    steps += feed(e, reserve_fund("67.1", when=at(minutes=4)))
    assert status_of(e, COVER) is Status.OK
    assert [(c.previous, c.status) for c in changes(steps) if c.rule == COVER] == [
        (Status.UNKNOWN, Status.BREACH),
        (Status.BREACH, Status.WARNING),
        (Status.WARNING, Status.OK),
    ]


def test_cover_is_unknown_without_a_listed_fund_or_with_a_stale_one() -> None:
    e = instant_engine(hk_policy())
    feed(e, price("1"), *customer("90", "10"))
    assert status_of(e, COVER) is Status.UNKNOWN
    assert assessment_of(e, COVER).evidence == {"missing": "reserve_fund"}
    feed(e, reserve_fund("100"))
    assert status_of(e, COVER) is Status.OK
    # wallets and prices stay fresh, the fund figure does not
    later = at(hours=36, microseconds=1)
    feed(e, price("1", when=later), *customer("90", "10", when=later), liability("1", when=later))
    assert status_of(e, COVER) is Status.UNKNOWN
    assert "reserve_fund" in assessment_of(e, COVER).reason


def test_cover_is_unknown_without_customer_crypto_or_wallets_or_prices() -> None:
    e = instant_engine(hk_policy())
    feed(e, reserve_fund("100"))
    assert "wallet_balances" in assessment_of(e, COVER).reason
    feed(e, wallet("5", wallet_id="house", holder="house"))
    assert "no price" in assessment_of(e, COVER).reason
    feed(e, price("1"))
    assert status_of(e, COVER) is Status.UNKNOWN
    assert assessment_of(e, COVER).evidence == {"customer_value": "0"}
    feed(e, *customer("90", "10"))
    assert status_of(e, COVER) is Status.OK
    moment(e, at(hours=1, microseconds=1))
    assert status_of(e, COVER) is Status.UNKNOWN


def test_a_fund_in_another_currency_is_converted_or_unknown() -> None:
    e = instant_engine(hk_policy())
    feed(e, price("1"), reserve_fund("10", currency="USD"), *customer("90", "10"))
    assert status_of(e, COVER) is Status.UNKNOWN
    assert "USD" in assessment_of(e, COVER).reason
    feed(e, price("7.8", asset="USD"))
    assert assessment_of(e, COVER).evidence["components"]["reserve_fund"] == "78"


@pytest.mark.parametrize(
    ("cover", "words"),
    [
        ({"components": ["fund"]}, "components.0"),
        ({"components": []}, "components"),
        ({"components": ["insurance", "insurance"]}, "repeat"),
        ({"cold_share": "1.5"}, "cold_share"),
        ({"cold_share": "0", "hot_share": "0"}, "both be 0"),
        ({"warning_below": "0.9"}, "warning_below"),
    ],
)
def test_hk_parameters_are_validated(cover: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        hk_policy(**cover)
    (problem,) = caught.value.problems
    assert problem.startswith("packs.hk.compensation_cover")
    assert words in problem


# -- two regimes at once ----------------------------------------------------------------------


MULTI = {
    "exchanges": {
        "default": {"packs": ["jp", "ops"]},
        "dual": {"packs": ["ops", "hk", "jp"]},
        "hk-venue": {
            "packs": ["hk"],
            "params": {"hk": {"cold_storage": {"minimum_share": "0.9", "warning_share": "0.9"}}},
        },
    }
}


def test_an_exchange_with_jp_hk_and_ops_gets_every_rule_in_a_fixed_order() -> None:
    policy = parse_policy(MULTI)
    assert [r.id for r in rules_for(policy.for_exchange("dual"))] == [
        "jp.liability_reserve",
        "jp.cold_storage",
        "jp.hot_wallet_guarantee",
        "jp.segregation",
        "hk.cold_storage",
        "hk.compensation_cover",
        "ops.hot_wallet_drain",
    ]


def test_one_book_judged_by_two_regimes() -> None:
    e = instant_engine(parse_policy(MULTI))
    for exchange in (EXCHANGE, "dual", "hk-venue"):
        feed(
            e,
            price("1"),
            reserve_fund(3_000_000_000, exchange=exchange),
            wallet("97", wallet_id="cold", custody="cold", exchange=exchange),
            wallet("3.15", wallet_id="g", holder="guarantee", exchange=exchange),
            wallet("3", wallet_id="hot", custody="hot", exchange=exchange),
            liability("100", exchange=exchange),
        )
    # 97% cold: compliant in Japan (95%), not in Hong Kong (98%)
    assert status_of(e, "jp.cold_storage", "dual") is Status.OK
    assert status_of(e, COLD, "dual") is Status.BREACH
    assert assessment_of(e, COLD, "dual").shortfall == D("1")
    assert status_of(e, COVER, "dual") is Status.OK
    assert status_of(e, "jp.segregation", "dual") is Status.WARNING  # exactly what is owed
    assert status_of(e, "ops.hot_wallet_drain", "dual") is Status.OK
    # the default exchange has no hk rules; hk-venue has its own cold-storage line
    assert COLD not in e.exchanges[EXCHANGE].rules
    assert "jp.cold_storage" not in e.exchanges["hk-venue"].rules
    assert status_of(e, COLD, "hk-venue") is Status.OK
    # the drain of one exchange moves only its own rules, in both regimes at once
    (drained,) = feed(
        e, wallet("0", wallet_id="hot", custody="hot", exchange="dual", when=at(minutes=1))
    )
    assert [(c.exchange, c.rule, c.status) for c in drained.changes] == [
        ("dual", "jp.segregation", Status.BREACH),
        ("dual", COLD, Status.OK),  # nothing hot is left: 100% cold
        ("dual", "ops.hot_wallet_drain", Status.BREACH),
    ]


def test_the_built_in_policy_has_no_hk_rules() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), *customer("97", "3"))
    assert COLD not in e.exchanges[EXCHANGE].rules
