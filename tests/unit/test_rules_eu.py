"""eu.mica_own_funds through the engine: class minimums, overheads, insurance, currencies."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from monitor.core.engine import Engine, Outcome
from monitor.core.errors import PolicyError
from monitor.core.events import Topic, decode_document
from monitor.core.money import MONEY_CONTEXT
from monitor.core.policy import load_policy, parse_policy
from monitor.core.status import Status
from monitor.synthetic.scenarios import generate, phases
from tests.unit.builders import (
    EXCHANGE,
    T0,
    assessment_of,
    at,
    changes,
    feed,
    fixed_overheads,
    instant_engine,
    insurance,
    moment,
    own_funds,
    price,
    status_of,
)

RULE = "eu.mica_own_funds"
D = Decimal
YEAR = timedelta(days=365)
EUR = "170"  # yen per euro
POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "policies"


def eu_policy(service_class: int | None = None, **params: Any) -> Any:
    eu: dict[str, Any] = {"mica_own_funds": params} if params else {}
    if service_class is not None:
        eu["service_class"] = service_class
    return parse_policy({"packs": {"eu": eu}, "exchanges": {"default": {"packs": ["eu"]}}})


def measured(e: Engine, exchange: str = EXCHANGE) -> Any:
    return assessment_of(e, RULE, exchange)


@pytest.mark.parametrize(("service_class", "minimum"), [(1, 50_000), (2, 125_000), (3, 150_000)])
def test_the_class_minimum_binds_while_overheads_are_small(
    service_class: int, minimum: int
) -> None:
    e = instant_engine(eu_policy(service_class))
    feed(e, price(EUR, asset="EUR"), fixed_overheads("100000"), own_funds(minimum))
    a = measured(e)
    assert a.required == minimum * D(EUR)
    assert a.evidence["requirement"]["binding"] == "class_minimum"
    assert status_of(e, RULE) is Status.WARNING  # exactly the minimum: under 120%


@pytest.mark.parametrize(
    ("funds", "status"),
    [
        ("1199999.99", Status.BREACH),
        ("1200000", Status.WARNING),  # exactly a quarter of the overheads
        ("1439999.99", Status.WARNING),
        ("1440000", Status.OK),  # exactly 120%
    ],
)
def test_a_quarter_of_the_overheads_binds_when_larger(funds: str, status: Status) -> None:
    e = instant_engine(eu_policy(3, count_insurance=False))
    feed(e, price(EUR, asset="EUR"), fixed_overheads("4800000"), own_funds(funds))
    a = measured(e)
    assert status_of(e, RULE) is status
    assert a.required == 1_200_000 * D(EUR)
    assert a.available == D(funds) * D(EUR)
    assert a.ratio == MONEY_CONTEXT.divide(D(funds), D(1_200_000))
    assert a.shortfall == max(D(0), (1_200_000 - D(funds)) * D(EUR))
    assert a.evidence["requirement"]["binding"] == "overheads_quarter"


def test_insurance_of_a_years_term_in_force_counts() -> None:
    e = instant_engine(eu_policy(3))
    feed(
        e,
        price(EUR, asset="EUR"),
        fixed_overheads("4800000"),
        insurance("300000", currency="EUR", valid_from=T0 - timedelta(days=10), valid_to=T0 + YEAR),
        own_funds("900000"),  # last: the first full evaluation sees the insurance too
    )
    a = measured(e)
    assert a.available == 1_200_000 * D(EUR)
    assert a.evidence["insurance_counted"] == {"tokio-2026": str(300_000 * int(EUR))}
    assert "cancellation notice" in a.evidence["insurance_not_checked"]
    assert status_of(e, RULE) is Status.WARNING


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "why"),
    [
        (T0 - timedelta(days=10), T0 - timedelta(days=10) + YEAR - timedelta(seconds=1), "shorter"),
        (T0 + timedelta(days=1), T0 + 2 * YEAR, "not in force"),
        (T0 - YEAR - timedelta(days=1), T0, "not in force"),  # ends exactly now
    ],
)
def test_insurance_that_does_not_qualify_does_not_count(
    valid_from: datetime, valid_to: datetime, why: str
) -> None:
    e = instant_engine(eu_policy(3))
    feed(
        e,
        price(EUR, asset="EUR"),
        fixed_overheads("4800000"),
        own_funds("900000"),
        insurance("300000", currency="EUR", valid_from=valid_from, valid_to=valid_to),
    )
    a = measured(e)
    assert a.available == 900_000 * D(EUR)
    assert why in a.evidence["insurance_not_counted"]["tokio-2026"]
    assert status_of(e, RULE) is Status.BREACH


def test_insurance_can_be_switched_off_per_exchange() -> None:
    policy = parse_policy(
        {
            "exchanges": {
                "default": {"packs": ["eu"]},
                "no-cover": {
                    "packs": ["eu"],
                    "params": {"eu": {"mica_own_funds": {"count_insurance": False}}},
                },
            }
        }
    )
    e = instant_engine(policy)
    for exchange in (EXCHANGE, "no-cover"):
        feed(
            e,
            price(EUR, asset="EUR"),
            fixed_overheads("400000", exchange=exchange),
            own_funds("100000", exchange=exchange),
            insurance(
                "80000", currency="EUR", valid_from=T0, valid_to=T0 + YEAR, exchange=exchange
            ),
        )
    assert status_of(e, RULE) is Status.WARNING  # 180k against the 150k class-3 minimum
    assert status_of(e, RULE, "no-cover") is Status.BREACH


def test_the_service_class_per_exchange() -> None:
    policy = parse_policy(
        {
            "exchanges": {
                "default": {"packs": ["eu", "ops"]},
                "broker": {"packs": ["eu"], "params": {"eu": {"service_class": 1}}},
            }
        }
    )
    e = instant_engine(policy)
    for exchange in (EXCHANGE, "broker"):
        feed(e, price("1", asset="EUR"), fixed_overheads("0", exchange=exchange))
        feed(e, own_funds("100000", exchange=exchange))
    assert status_of(e, RULE) is Status.BREACH  # class 3 by default: 150k
    assert status_of(e, RULE, "broker") is Status.OK  # class 1: 50k
    assert measured(e, "broker").evidence["service_class"] == 1


def test_amounts_in_the_reporting_currency_need_no_price() -> None:
    policy = parse_policy(
        {"reporting_currency": "EUR", "exchanges": {"default": {"packs": ["eu"]}}}
    )
    e = instant_engine(policy)
    feed(e, fixed_overheads("800000"), own_funds("250000"))
    assert measured(e).required == 200_000
    assert status_of(e, RULE) is Status.OK


def test_unknown_until_own_funds_overheads_and_the_euro_price_are_in() -> None:
    e = instant_engine(eu_policy())
    steps = feed(e, fixed_overheads("800000"))
    assert measured(e).evidence == {"missing": "own_funds"}
    steps += feed(e, own_funds("300000"))
    assert "no market.prices price of EUR" in measured(e).reason
    steps += feed(e, price(EUR, asset="EUR"))
    assert status_of(e, RULE) is Status.OK
    e2 = instant_engine(eu_policy())
    feed(e2, price(EUR, asset="EUR"), own_funds("300000"))
    assert measured(e2).evidence == {"missing": "fixed_overheads"}
    assert [(c.previous, c.status) for c in changes(steps) if c.rule == RULE] == [
        (Status.UNKNOWN, Status.OK)
    ]


def test_unknown_once_own_funds_or_overheads_or_the_euro_price_are_too_old() -> None:
    e = instant_engine(eu_policy())
    feed(e, price(EUR, asset="EUR"), fixed_overheads("800000"), own_funds("300000"))
    moment(e, at(hours=1))
    assert status_of(e, RULE) is Status.OK
    moment(e, at(hours=1, microseconds=1))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "price of EUR" in measured(e).reason
    feed(e, price(EUR, asset="EUR", when=at(hours=36)))
    assert status_of(e, RULE) is Status.OK  # own funds exactly 36 h old
    feed(e, price(EUR, asset="EUR", when=at(hours=36, microseconds=1)))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "own_funds" in measured(e).reason
    late = T0 + timedelta(days=400, seconds=1)
    feed(e, price(EUR, asset="EUR", when=late), own_funds("300000", when=late))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "fixed_overheads" in measured(e).reason


def test_hysteresis() -> None:
    e = instant_engine(eu_policy(3, count_insurance=False))
    feed(e, price("1", asset="EUR"), fixed_overheads("0"), own_funds("100000"))
    assert status_of(e, RULE) is Status.BREACH
    feed(e, own_funds("152000", when=at(minutes=1)))  # 1.0133: not clear by 0.02
    assert status_of(e, RULE) is Status.BREACH
    feed(e, own_funds("153000", when=at(minutes=2)))
    assert status_of(e, RULE) is Status.WARNING
    feed(e, own_funds("182000", when=at(minutes=3)))  # 1.2133: not clear of 1.2 by 0.02
    assert status_of(e, RULE) is Status.WARNING
    feed(e, own_funds("183000", when=at(minutes=4)))
    assert status_of(e, RULE) is Status.OK


@pytest.mark.parametrize(
    ("eu", "place"),
    [
        ({"service_class": 4}, "packs.eu.service_class"),
        ({"service_class": 0}, "packs.eu.service_class"),
        ({"mica_own_funds": {"minimum_capital": {4: "1"}}}, "packs.eu.mica_own_funds"),
        ({"mica_own_funds": {"overheads_share": "2"}}, "packs.eu.mica_own_funds.overheads_share"),
        ({"mica_own_funds": {"insurance_min_term": "a year"}}, "insurance_min_term"),
    ],
)
def test_eu_parameters_are_validated(eu: dict[str, Any], place: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({"packs": {"eu": eu}, "exchanges": {"default": {"packs": ["eu"]}}})
    assert any(place in problem for problem in caught.value.problems), caught.value.problems


def test_a_bad_service_class_of_one_exchange_is_placed_under_that_exchange() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            {
                "exchanges": {
                    "default": {"packs": ["jp"]},
                    "eu-venue": {"packs": ["eu", "ops"], "params": {"eu": {"service_class": 5}}},
                }
            }
        )
    (problem,) = caught.value.problems
    assert problem.startswith("exchanges.eu-venue.params.eu.service_class: ")


@pytest.mark.parametrize("name", ["eu.yaml", "hk.yaml", "jp-only.yaml", "multi-regime.yaml"])
def test_the_example_policies_are_valid(name: str) -> None:
    policy = load_policy(POLICIES / name)
    assert policy.for_exchange("default") is not None


def test_the_eu_venue_scenario_breaches_then_recovers() -> None:
    start = datetime(2024, 5, 31, 13, 0, tzinfo=T0.tzinfo)
    e = instant_engine(load_policy(POLICIES / "eu.yaml"))
    found: list[Any] = []
    for record in generate("eu-venue", start, 1):
        step = e.apply(decode_document(Topic(record.topic), record.key, record.value))
        assert step.outcome is Outcome.APPLIED
        found.extend(c for c in step.changes if c.rule == RULE)
    story = phases("eu-venue", start, 1)
    assert [(c.previous, c.status) for c in found] == [
        (Status.UNKNOWN, Status.OK),
        (Status.OK, Status.BREACH),
        (Status.BREACH, Status.OK),
    ]
    assert [c.as_of for c in found[1:]] == [story[1].starts, story[2].starts]
    assert {r.status for r in e.exchanges["eu-venue"].rules.values()} == {Status.OK}
