"""Silence is not safety: a feed that stops makes the rules that need it unknown, loudly."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from monitor.core.engine import Engine
from monitor.core.output.report import adequacy_report
from monitor.core.policy import load_policy, parse_policy
from monitor.core.status import Status
from tests.unit.builders import (
    T0,
    Doc,
    at,
    changes,
    feed,
    liability,
    price,
    reserve_fund,
    status_of,
    trade,
    wallet,
)

RESERVE = "jp.liability_reserve"
COLD = "jp.cold_storage"
GUARANTEE = "jp.hot_wallet_guarantee"
SEGREGATION = "jp.segregation"
DRAIN = "ops.hot_wallet_drain"
BILLION = 10**9


def _feeds(when: datetime) -> dict[str, list[Doc]]:
    """A healthy exchange's events of each feed, all stated at ``when``."""
    return {
        "prices": [price("10700000", when=when)],
        "wallet_balances": [
            wallet("97000", when=when),
            wallet("3000", wallet_id="btc-hot-1", custody="hot", when=when),
            wallet("3100", wallet_id="btc-guarantee-1", holder="guarantee", when=when),
        ],
        "ledger": [liability("99000", when=when), reserve_fund(5 * BILLION, when=when)],
        "trades": [trade("1250000", when=when)],
    }


def _healthy() -> Engine:
    e = Engine(load_policy())  # jp and ops
    feed(e, *(doc for docs in _feeds(T0).values() for doc in docs))
    assert all(status_of(e, rule) is Status.OK for rule in (RESERVE, COLD, GUARANTEE, SEGREGATION))
    return e


# which rules need which feed, under the built-in jp and ops packs
NEEDED_BY = {
    "prices": {COLD, GUARANTEE, SEGREGATION, DRAIN},
    "wallet_balances": {COLD, GUARANTEE, SEGREGATION, DRAIN},
    "ledger": {RESERVE, SEGREGATION},
    "trades": {RESERVE},
}


@pytest.mark.parametrize("silent", sorted(NEEDED_BY))
def test_a_feed_that_stops_makes_exactly_the_rules_that_need_it_unknown(silent: str) -> None:
    e = _healthy()
    # every half hour for 37 hours (the ledger allows 36), every feed but one speaks again
    steps = []
    for half_hours in range(1, 75):
        when = at(minutes=30 * half_hours)
        talking = [doc for name, docs in _feeds(when).items() if name != silent for doc in docs]
        steps.extend(feed(e, *talking))
    into_unknown = [c for c in changes(steps) if c.status is Status.UNKNOWN]
    assert sorted(c.rule for c in into_unknown) == sorted(NEEDED_BY[silent])
    for change in into_unknown:
        assert change.previous is Status.OK  # a status change, published as an alert
        assert change.assessment.ratio is None
    report = adequacy_report(e, "dmm")
    assert {r.rule for r in report.rules if r.status is Status.UNKNOWN} == NEEDED_BY[silent]
    ages = {feed_name: report.as_of - moment for feed_name, moment in report.feeds.items()}
    assert ages == {
        name: timedelta(hours=37) if name == silent else timedelta(0) for name in NEEDED_BY
    }


def test_a_silent_trades_feed_is_unknown_after_max_trades_age_and_recovers_with_a_trade() -> None:
    e = Engine(load_policy())
    feed(e, reserve_fund(5 * BILLION), trade(BILLION))
    assert status_of(e, RESERVE) is Status.OK
    feed(e, reserve_fund(5 * BILLION, when=at(hours=6)))  # the ledger keeps talking
    assert status_of(e, RESERVE) is Status.OK  # six hours is still within the allowance
    (later,) = feed(e, reserve_fund(5 * BILLION, when=at(hours=6, seconds=1)))
    (change,) = later.changes
    assert (change.previous, change.status) == (Status.OK, Status.UNKNOWN)
    assert "trades data for dmm is" in change.assessment.reason
    assert "older than the 6h this rule allows" in change.assessment.reason
    (back,) = feed(e, trade(BILLION, when=at(hours=6, seconds=2)))
    assert [(c.previous, c.status) for c in back.changes] == [(Status.UNKNOWN, Status.OK)]


def test_an_exchange_that_never_reported_a_trade_is_judged_on_no_volume() -> None:
    e = Engine(load_policy())
    feed(e, reserve_fund(5 * BILLION), reserve_fund(5 * BILLION, when=at(hours=30)))
    assert status_of(e, RESERVE) is Status.OK
    assert adequacy_report(e, "dmm").rules[0].required == 2 * BILLION  # the minimum floor


def test_without_a_volume_rate_the_trades_feed_may_fall_silent() -> None:
    policy = parse_policy(
        {
            "reporting_currency": "JPY",
            "packs": {"jp": {"liability_reserve": {"volume_rate": "0"}}},
            "exchanges": {"default": {"packs": ["jp"]}},
        }
    )
    e = Engine(policy)
    feed(e, reserve_fund(5 * BILLION), trade(BILLION))
    feed(e, reserve_fund(5 * BILLION, when=at(hours=30)))
    assert status_of(e, RESERVE) is Status.OK
