"""Builders of contract input events (CONTRACT section 3) and small engine helpers.

Every builder returns the plain JSON-ready dict a producer would send, with
strings for money and RFC 3339 times, so a test reads like the contract.
``encode``/``line`` turn such a dict into the bytes of a Kafka record value or a
``replay`` JSON Lines record; ``event`` decodes it through the real edge.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from monitor.core.engine import Engine, StatusChange, Step
from monitor.core.events import Event, Topic, decode_document
from monitor.core.money import rfc3339
from monitor.core.policy import ExchangePolicy, Policy
from monitor.core.rules.base import ExchangeView
from monitor.core.status import Status

T0 = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
EXCHANGE = "dmm"

Doc = dict[str, Any]

_ids = itertools.count(1)


def at(**delta: float) -> datetime:
    """``T0`` moved by a timedelta given as keywords, e.g. ``at(hours=2)``."""
    return T0 + timedelta(**delta)


def _id(prefix: str, event_id: str | None) -> str:
    return event_id if event_id is not None else f"{prefix}-{next(_ids)}"


def _text(value: str | int | Decimal) -> str:
    return str(value)


def trade(
    notional: str | int | Decimal = "1250000",
    *,
    when: datetime = T0,
    currency: str = "JPY",
    exchange: str = EXCHANGE,
    market: str = "BTC/JPY",
    event_id: str | None = None,
) -> Doc:
    return {
        "event_id": _id("t", event_id),
        "exchange": exchange,
        "ts": rfc3339(when),
        "market": market,
        "notional": _text(notional),
        "currency": currency,
    }


def wallet(
    balance: str | int | Decimal,
    *,
    asset: str = "BTC",
    wallet_id: str = "btc-cold-1",
    custody: str = "cold",
    holder: str = "customer",
    when: datetime = T0,
    exchange: str = EXCHANGE,
    event_id: str | None = None,
) -> Doc:
    return {
        "event_id": _id("w", event_id),
        "exchange": exchange,
        "ts": rfc3339(when),
        "wallet": wallet_id,
        "asset": asset,
        "balance": _text(balance),
        "custody": custody,
        "holder": holder,
    }


def price(
    value: str | int | Decimal,
    *,
    asset: str = "BTC",
    when: datetime = T0,
    currency: str = "JPY",
    event_id: str | None = None,
) -> Doc:
    return {
        "event_id": _id("p", event_id),
        "asset": asset,
        "ts": rfc3339(when),
        "price": _text(value),
        "currency": currency,
    }


def liability(
    amount: str | int | Decimal,
    *,
    asset: str = "BTC",
    when: datetime = T0,
    exchange: str = EXCHANGE,
    event_id: str | None = None,
) -> Doc:
    return {
        "type": "customer_liability",
        "event_id": _id("l", event_id),
        "exchange": exchange,
        "ts": rfc3339(when),
        "asset": asset,
        "amount": _text(amount),
    }


def reserve_fund(
    amount: str | int | Decimal,
    *,
    currency: str = "JPY",
    when: datetime = T0,
    exchange: str = EXCHANGE,
    event_id: str | None = None,
) -> Doc:
    return {
        "type": "reserve_fund",
        "event_id": _id("f", event_id),
        "exchange": exchange,
        "ts": rfc3339(when),
        "amount": _text(amount),
        "currency": currency,
    }


def insurance(
    coverage: str | int | Decimal,
    *,
    valid_from: datetime,
    valid_to: datetime,
    policy_id: str = "tokio-2026",
    currency: str = "JPY",
    when: datetime = T0,
    exchange: str = EXCHANGE,
    event_id: str | None = None,
) -> Doc:
    return {
        "type": "insurance_policy",
        "event_id": _id("i", event_id),
        "exchange": exchange,
        "ts": rfc3339(when),
        "policy_id": policy_id,
        "coverage": _text(coverage),
        "currency": currency,
        "valid_from": rfc3339(valid_from),
        "valid_to": rfc3339(valid_to),
    }


def own_funds(
    amount: str | int | Decimal,
    *,
    currency: str = "EUR",
    when: datetime = T0,
    exchange: str = EXCHANGE,
    event_id: str | None = None,
) -> Doc:
    return {
        "type": "own_funds",
        "event_id": _id("o", event_id),
        "exchange": exchange,
        "ts": rfc3339(when),
        "amount": _text(amount),
        "currency": currency,
    }


def fixed_overheads(
    annual_amount: str | int | Decimal,
    *,
    currency: str = "EUR",
    when: datetime = T0,
    exchange: str = EXCHANGE,
    event_id: str | None = None,
) -> Doc:
    return {
        "type": "fixed_overheads",
        "event_id": _id("x", event_id),
        "exchange": exchange,
        "ts": rfc3339(when),
        "annual_amount": _text(annual_amount),
        "currency": currency,
    }


def topic_for(doc: Doc) -> Topic:
    """The input topic a builder's document belongs on."""
    if "type" in doc:
        return Topic.LEDGER
    if "wallet" in doc:
        return Topic.WALLET_BALANCES
    if "market" in doc:
        return Topic.TRADES
    return Topic.PRICES


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")


def event(doc: Doc) -> Event:
    """The event a document decodes to at the edge (raises InvalidEvent)."""
    return decode_document(topic_for(doc), None, doc)


def line(doc: Any, *, topic: Topic | str | None = None, key: str | None = None) -> str:
    """One ``replay`` JSON Lines record carrying ``doc``."""
    name = topic if topic is not None else topic_for(doc)
    record: dict[str, Any] = {"topic": str(name), "value": doc}
    if key is not None:
        record["key"] = key
    return json.dumps(record) + "\n"


def without_hold(policy: Policy) -> Policy:
    """``policy`` with every rule publishing a breach at once (``breach_for`` 0).

    For the tests of a rule's arithmetic at one moment; the hold itself has tests
    of its own (test_moments.py).
    """
    resolved = {}
    for exchange, packs in policy.resolved.items():
        held = {}
        for name, pack in packs.packs.items():
            rules = {
                field: params.model_copy(update={"breach_for": timedelta(0)})
                for field, params in pack
                if hasattr(params, "breach_for")
            }
            held[name] = pack.model_copy(update=rules)
        resolved[exchange] = ExchangePolicy(held)
    return Policy(policy.reporting_currency, resolved)


def instant_engine(policy: Policy, **options: Any) -> Engine:
    """An engine on ``policy`` whose rules publish a breach at once (:func:`without_hold`)."""
    return Engine(without_hold(policy), **options)


def feed(engine: Engine, *docs: Doc) -> list[Step]:
    """Apply each document to ``engine`` in order; the steps."""
    return [engine.apply(event(doc)) for doc in docs]


def moment(engine: Engine, when: datetime, exchange: str = EXCHANGE) -> Step:
    """Let ``exchange``'s event time reach ``when``: a trade of nothing, judged at once.

    Time passes for an exchange only with its own records (CONTRACT section 8);
    an empty trade moves its clock without changing any figure but the trades
    feed's age.
    """
    return engine.apply(event(trade(0, when=when, exchange=exchange)))


def changes(steps: Iterable[Step]) -> list[StatusChange]:
    return [change for step in steps for change in step.changes]


def status_of(engine: Engine, rule: str, exchange: str = EXCHANGE) -> Status:
    return engine.exchanges[exchange].rules[rule].status


def assessment_of(engine: Engine, rule: str, exchange: str = EXCHANGE) -> Any:
    """What ``rule`` measures of ``exchange`` at its clock, as its adequacy report shows.

    Measured afresh: a judgment does not run a rule again while nothing it reads
    has changed, so the assessment it holds may carry figures from before a price moved.
    """
    state = engine.exchanges[exchange]
    assert state.rules[rule].assessment is not None  # judged at least once
    (check,) = [r for r in engine.rules_of(exchange) if r.id == rule]
    assert state.clock is not None
    return check.assess(ExchangeView(state, state.valuer, state.clock))
