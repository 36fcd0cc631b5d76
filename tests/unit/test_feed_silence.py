"""An exchange gone silent by the worker's wall clock: the rules whose feeds would be too old
turn unknown.

CONTRACT section 8 puts this outside the guarantee on purpose: `replay` has no
wall clock. The driver tells the engine "nothing of this exchange has come for
this long" (`Engine.silence`); the engine asks each rule's age limits what they
would say had event time gone on that long from the exchange's clock.
"""

from __future__ import annotations

from datetime import timedelta

from monitor.core.engine import Engine
from monitor.core.policy import load_policy
from monitor.core.rules.base import feed_limits
from monitor.core.status import Status
from tests.unit.builders import (
    T0,
    at,
    changes,
    feed,
    instant_engine,
    liability,
    price,
    status_of,
    wallet,
)

SEGREGATION = "jp.segregation"
LIABILITY_RESERVE = "jp.liability_reserve"
WALLETS_AT = at(seconds=1)  # the newest wallet snapshot, and the exchange's clock


def _healthy_engine() -> Engine:
    engine = instant_engine(load_policy(None))
    feed(
        engine,
        price("10000000", when=T0),
        liability("100", when=T0),
        wallet("5", custody="hot", wallet_id="hot-1", when=T0),
        wallet("100", custody="cold", wallet_id="cold-1", when=WALLETS_AT),
    )
    assert status_of(engine, SEGREGATION) is Status.OK
    return engine


def _limits(engine: Engine, rule: str) -> dict[str, timedelta]:
    return feed_limits(next(r for r in engine.rules_of("dmm") if r.id == rule))


def test_the_age_limits_of_a_rule_come_from_its_parameters() -> None:
    engine = instant_engine(load_policy(None))
    (segregation,) = [r for r in engine.rules_of("dmm") if r.id == SEGREGATION]
    params = segregation.params  # type: ignore[attr-defined]
    assert feed_limits(segregation) == {
        "wallet_balances": params.max_wallet_age,
        "prices": params.max_price_age,
        "ledger": params.max_liability_age,
    }


def test_a_silence_that_would_age_a_feed_past_its_limit_turns_the_rule_unknown() -> None:
    engine = _healthy_engine()
    limits = _limits(engine, SEGREGATION)
    # the wallets are the newest figures: the prices (1 s older) age past their limit first
    first = min(limits["wallet_balances"], limits["prices"])
    just_within = first - timedelta(seconds=1)
    assert SEGREGATION not in {c.rule for c in engine.silence("dmm", just_within).changes}

    engine.journal_writes()
    step = engine.silence("dmm", first + timedelta(seconds=1))
    (change,) = [c for c in step.changes if c.rule == SEGREGATION]
    assert (change.previous, change.status) == (Status.OK, Status.UNKNOWN)
    assert change.assessment.reason.startswith("feed silent: nothing from dmm for ")
    assert change.assessment.evidence["feed"] in ("prices", "wallet_balances")
    assert change.as_of == WALLETS_AT  # its newest moment, already judged
    assert status_of(engine, SEGREGATION) is Status.UNKNOWN
    # the change is journalled: a restarted worker holds the rule unknown too
    assert any('"rule","dmm","jp.segregation"' in key for key, _ in engine.journal_writes())
    # silent on: no second change
    again = engine.silence("dmm", timedelta(days=1))
    assert SEGREGATION not in {c.rule for c in again.changes}


def test_the_next_record_judges_a_silenced_rule_again() -> None:
    engine = _healthy_engine()
    engine.silence("dmm", timedelta(days=1))
    assert status_of(engine, SEGREGATION) is Status.UNKNOWN
    # fresh wallets and price: the rule is judged again at their moment and is ok
    steps = feed(
        engine,
        price("10000000", when=at(minutes=1), event_id="p-again"),
        wallet("5", custody="hot", wallet_id="hot-1", when=at(minutes=1), event_id="w-h2"),
        wallet("100", custody="cold", wallet_id="cold-1", when=at(minutes=1), event_id="w-c2"),
    )
    back = [c for c in changes(steps) if c.rule == SEGREGATION]
    assert [(c.previous, c.status) for c in back] == [(Status.UNKNOWN, Status.OK)]


def test_a_rule_already_unknown_is_left_alone() -> None:
    engine = _healthy_engine()
    # no trade ever: the liability reserve cannot be judged, silence or not
    assert status_of(engine, LIABILITY_RESERVE) is Status.UNKNOWN
    step = engine.silence("dmm", timedelta(days=30))
    assert LIABILITY_RESERVE not in {c.rule for c in step.changes}


def test_an_unknown_exchange_is_ignored() -> None:
    engine = _healthy_engine()
    assert engine.silence("nobody", timedelta(days=1)).changes == []
