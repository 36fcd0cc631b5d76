"""jp.hot_wallet_guarantee and jp.segregation through the engine, and their incremental sets.

Both rules compare quantities asset by asset; the holdings keep, per asset, the
held and required quantities, the short assets, their value and the worst
ratio as snapshots change. The property tests at the end hold those against a
brute-force recomputation from the newest snapshots, under random,
out-of-order and repeated events.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.engine import rules_for
from monitor.core.errors import PolicyError
from monitor.core.money import MONEY_CONTEXT
from monitor.core.policy import load_policy, parse_policy
from monitor.core.state.coverage import RATIO_CAP, KeyedMin
from monitor.core.status import Status
from tests.unit.builders import (
    EXCHANGE,
    T0,
    Doc,
    assessment_of,
    at,
    changes,
    event,
    feed,
    instant_engine,
    liability,
    moment,
    price,
    status_of,
    wallet,
)

GUARANTEE = "jp.hot_wallet_guarantee"
SEGREGATION = "jp.segregation"
D = Decimal


def hot(balance: str, *, asset: str = "BTC", when: Any = T0, **fields: Any) -> Doc:
    """Customer crypto in a hot wallet."""
    return wallet(
        balance, asset=asset, wallet_id=f"{asset}-hot", custody="hot", when=when, **fields
    )


def cold(balance: str, *, asset: str = "BTC", when: Any = T0, **fields: Any) -> Doc:
    """Customer crypto in a cold wallet."""
    return wallet(
        balance, asset=asset, wallet_id=f"{asset}-cold", custody="cold", when=when, **fields
    )


def guarantee(balance: str, *, asset: str = "BTC", when: Any = T0, custody: str = "cold") -> Doc:
    """The exchange's guarantee crypto."""
    return wallet(
        balance,
        asset=asset,
        wallet_id=f"{asset}-guarantee-{custody}",
        custody=custody,
        holder="guarantee",
        when=when,
    )


def transitions(steps: Any, rule: str) -> list[tuple[Status, Status]]:
    return [(c.previous, c.status) for c in changes(steps) if c.rule == rule]


def test_the_default_policy_applies_jp_and_ops_in_a_fixed_order() -> None:
    rules = rules_for(load_policy().for_exchange("any"))
    assert [r.id for r in rules] == [
        "jp.liability_reserve",
        "jp.cold_storage",
        "jp.hot_wallet_guarantee",
        "jp.segregation",
        "ops.hot_wallet_drain",
    ]
    listed_backwards = parse_policy({"exchanges": {"default": {"packs": ["ops", "jp"]}}})
    assert [r.id for r in rules_for(listed_backwards.for_exchange("x"))] == [r.id for r in rules]


# -- jp.hot_wallet_guarantee -----------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "status"),
    [
        ("99.99", Status.BREACH),  # just under the same quantity
        ("100", Status.WARNING),  # exactly the same quantity: compliant, under the 2% margin
        ("101.99", Status.WARNING),
        ("102", Status.OK),  # exactly the early-warning level
        ("150", Status.OK),
    ],
)
def test_guarantee_boundary_is_the_same_quantity(held: str, status: Status) -> None:
    e = instant_engine(load_policy())
    # the guarantee first: the first evaluation with hot crypto sees both
    feed(e, price("1000"), cold("2000"), guarantee(held), hot("100"))
    assert status_of(e, GUARANTEE) is status
    assert assessment_of(e, GUARANTEE).ratio == D(held) / 100


def test_guarantee_shortfall_names_each_short_asset_and_its_value() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("1000", asset="BTC"),
        price("10", asset="ETH"),
        price("2", asset="XRP"),
        hot("100", asset="BTC"),
        guarantee("96", asset="BTC"),
        hot("50", asset="ETH"),
        guarantee("40", asset="ETH"),
        hot("10", asset="XRP"),
        guarantee("500", asset="XRP"),  # a surplus here hides nothing elsewhere
    )
    a = assessment_of(e, GUARANTEE)
    assert status_of(e, GUARANTEE) is Status.BREACH
    assert a.ratio == D("0.8")  # ETH, the worst asset
    assert a.evidence["worst_asset"] == "ETH"
    assert a.required == 100 * 1000 + 50 * 10 + 10 * 2
    assert a.shortfall == 4 * 1000 + 10 * 10
    assert a.available == a.required - a.shortfall
    assert a.evidence["short_assets"] == {
        "BTC": {"hot_customer": "100", "guarantee": "96", "short": "4", "short_value": "4000"},
        "ETH": {"hot_customer": "50", "guarantee": "40", "short": "10", "short_value": "100"},
    }
    assert list(a.evidence["short_assets"]) == ["BTC", "ETH"]  # largest value first
    assert "BTC by 4" in a.reason and "ETH by 10" in a.reason


def test_guarantee_counts_in_any_custody_and_only_hot_customer_crypto_needs_it() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("1"),
        cold("10000"),  # cold customer crypto needs no guarantee
        hot("100"),
        guarantee("60", custody="cold"),
        guarantee("45", custody="hot"),
        wallet("1000", wallet_id="house", custody="hot", holder="house"),  # not a guarantee
    )
    assert assessment_of(e, GUARANTEE).ratio == D("1.05")
    assert status_of(e, GUARANTEE) is Status.OK


def test_guarantee_shortfall_value_follows_the_price() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1000"), hot("100"), guarantee("90"))
    assert assessment_of(e, GUARANTEE).shortfall == 10_000
    feed(e, price("1500", when=at(minutes=1)))
    assert assessment_of(e, GUARANTEE).shortfall == 15_000
    assert assessment_of(e, GUARANTEE).required == 150_000


def test_no_customer_crypto_in_hot_wallets_needs_no_guarantee() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), cold("100"))
    a = assessment_of(e, GUARANTEE)
    assert status_of(e, GUARANTEE) is Status.OK
    assert (a.ratio, a.required, a.shortfall) == (RATIO_CAP, 0, 0)
    # a hot balance that appears and goes again
    feed(e, hot("5", when=at(minutes=1)))
    assert status_of(e, GUARANTEE) is Status.BREACH
    feed(e, hot("0", when=at(minutes=2)))
    assert status_of(e, GUARANTEE) is Status.OK


def test_guarantee_hysteresis() -> None:
    e = instant_engine(load_policy())
    steps = feed(e, price("1"), hot("1000"), guarantee("990"))
    assert status_of(e, GUARANTEE) is Status.BREACH
    steps += feed(e, guarantee("1004", when=at(minutes=1)))  # 1.004: over 1, not by 0.005
    assert status_of(e, GUARANTEE) is Status.BREACH
    steps += feed(e, guarantee("1005", when=at(minutes=2)))
    assert status_of(e, GUARANTEE) is Status.WARNING
    steps += feed(e, guarantee("1024", when=at(minutes=3)))  # over 1.02, not by 0.005
    assert status_of(e, GUARANTEE) is Status.WARNING
    steps += feed(e, guarantee("1025", when=at(minutes=4)))
    assert status_of(e, GUARANTEE) is Status.OK
    steps += feed(e, guarantee("1019", when=at(minutes=5)))  # worsening is at once
    assert transitions(steps, GUARANTEE) == [
        (Status.UNKNOWN, Status.BREACH),
        (Status.BREACH, Status.WARNING),
        (Status.WARNING, Status.OK),
        (Status.OK, Status.WARNING),
    ]


def test_guarantee_is_unknown_without_wallets_then_with_stale_wallets() -> None:
    e = instant_engine(load_policy())
    feed(e, liability("1"))
    assert status_of(e, GUARANTEE) is Status.UNKNOWN
    assert "wallet_balances" in assessment_of(e, GUARANTEE).reason
    feed(e, price("1"), hot("100"), guarantee("200"))
    moment(e, at(hours=1))
    assert status_of(e, GUARANTEE) is Status.OK
    moment(e, at(hours=1, microseconds=1))
    assert status_of(e, GUARANTEE) is Status.UNKNOWN


def test_guarantee_is_unknown_while_a_hot_asset_has_no_price_or_prices_are_stale() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), hot("100"), guarantee("200"), hot("1", asset="ETH"))
    assert status_of(e, GUARANTEE) is Status.UNKNOWN
    assert assessment_of(e, GUARANTEE).evidence["unpriced"] == ["ETH"]
    feed(e, price("5", asset="ETH"))
    assert status_of(e, GUARANTEE) is Status.BREACH  # ETH has no guarantee at all
    feed(e, guarantee("1", asset="ETH"), hot("100", when=at(hours=1, seconds=1)))
    assert status_of(e, GUARANTEE) is Status.UNKNOWN
    assert "prices" in assessment_of(e, GUARANTEE).reason


def test_guarantee_override_per_exchange() -> None:
    policy = parse_policy(
        {
            "exchanges": {
                "default": {"packs": ["jp"]},
                "strict": {
                    "packs": ["jp"],
                    "params": {
                        "jp": {"hot_wallet_guarantee": {"breach_below": 1.1, "warning_below": 1.2}}
                    },
                },
            }
        }
    )
    e = instant_engine(policy)
    for exchange in (EXCHANGE, "strict"):
        feed(
            e,
            price("1"),
            hot("100", exchange=exchange),
            wallet("105", wallet_id="g", holder="guarantee", exchange=exchange),
        )
    assert status_of(e, GUARANTEE) is Status.OK
    assert status_of(e, GUARANTEE, "strict") is Status.BREACH


# -- jp.segregation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "status"),
    [
        ("9999.99", Status.BREACH),
        ("10000", Status.WARNING),  # holds exactly what is owed: under the 100.2% margin
        ("10019.99", Status.WARNING),
        ("10020", Status.OK),  # exactly 1.002
    ],
)
def test_segregation_boundary_is_what_is_owed(held: str, status: Status) -> None:
    e = instant_engine(load_policy())
    hot_part = D("500")
    feed(e, price("1000"), hot(str(hot_part)), cold(str(D(held) - hot_part)), liability("10000"))
    assert status_of(e, SEGREGATION) is status
    assert assessment_of(e, SEGREGATION).ratio == D(held) / 10000


def test_segregation_counts_only_customer_holdings_in_every_custody() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("2"),
        hot("30"),
        cold("60"),
        guarantee("100"),
        wallet("100", wallet_id="house", holder="house"),
        liability("100"),
    )
    a = assessment_of(e, SEGREGATION)
    assert status_of(e, SEGREGATION) is Status.BREACH
    assert a.evidence["short_assets"]["BTC"] == {
        "owed": "100",
        "customer_holdings": "90",
        "short": "10",
        "short_value": "20",
    }
    assert (a.required, a.available, a.shortfall) == (200, 180, 20)


def test_segregation_of_an_asset_owed_with_its_customer_wallets_empty_is_a_breach() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), price("3", asset="ETH"), cold("100"), liability("100"))
    feed(e, cold("0", asset="ETH"), liability("7", asset="ETH"))
    a = assessment_of(e, SEGREGATION)
    assert status_of(e, SEGREGATION) is Status.BREACH
    assert a.ratio == 0
    assert a.shortfall == 21
    assert "ETH by 7" in a.reason


def test_segregation_waits_for_the_first_customer_wallet_snapshot_of_an_asset_owed() -> None:
    # A worker consumes the ledger and the wallet topics concurrently: liabilities often
    # arrive before the first wallet snapshots. That is a missing input, not a breach.
    e = instant_engine(load_policy())
    steps = feed(e, price("1"), price("3", asset="ETH"), cold("110"), liability("100"))
    steps += feed(e, liability("7", asset="ETH"), guarantee("5", asset="ETH"))
    assert status_of(e, SEGREGATION) is Status.UNKNOWN
    a = assessment_of(e, SEGREGATION)
    assert a.evidence["unreported"] == ["ETH"]
    assert "no wallet snapshot of customer ETH" in a.reason
    steps += feed(e, cold("8", asset="ETH"))
    assert status_of(e, SEGREGATION) is Status.OK
    assert [(c.previous, c.status) for c in changes(steps) if c.rule == SEGREGATION] == [
        (Status.UNKNOWN, Status.OK),
        (Status.OK, Status.UNKNOWN),
        (Status.UNKNOWN, Status.OK),
    ]


def test_segregation_worst_asset_decides_however_large_the_surplus_elsewhere() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("1", asset="BTC"),
        price("1", asset="ETH"),
        cold("1000000", asset="BTC"),
        liability("1", asset="BTC"),
        cold("99", asset="ETH"),
        liability("100", asset="ETH"),
    )
    assert status_of(e, SEGREGATION) is Status.BREACH
    assert assessment_of(e, SEGREGATION).ratio == D("0.99")
    assert assessment_of(e, SEGREGATION).evidence["worst_asset"] == "ETH"


def test_segregation_recovers_with_hysteresis() -> None:
    e = instant_engine(load_policy())
    steps = feed(e, price("1"), cold("1000"), liability("1001"))
    assert status_of(e, SEGREGATION) is Status.BREACH
    steps += feed(e, liability("1000", when=at(minutes=1)))  # 1.0: not clear by 0.001
    assert status_of(e, SEGREGATION) is Status.BREACH
    steps += feed(e, liability("995", when=at(minutes=2)))  # 1.005: clears both lines
    assert status_of(e, SEGREGATION) is Status.OK
    assert transitions(steps, SEGREGATION) == [
        (Status.UNKNOWN, Status.BREACH),
        (Status.BREACH, Status.OK),
    ]


def test_segregation_is_unknown_before_any_liability() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), cold("100"))
    assert status_of(e, SEGREGATION) is Status.UNKNOWN
    assert assessment_of(e, SEGREGATION).evidence == {"missing": "customer_liability"}


def test_segregation_is_unknown_while_customer_crypto_is_held_without_a_liability() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), price("1", asset="ETH"), cold("100"), liability("90"))
    assert status_of(e, SEGREGATION) is Status.OK
    feed(e, cold("5", asset="ETH"))
    assert status_of(e, SEGREGATION) is Status.UNKNOWN
    assert assessment_of(e, SEGREGATION).evidence["unstated"] == ["ETH"]
    feed(e, liability("5", asset="ETH"))
    assert status_of(e, SEGREGATION) is Status.WARNING  # ETH held at exactly what is owed


def test_segregation_is_unknown_once_the_oldest_liability_is_stale() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("1", asset="BTC"),
        price("1", asset="ETH"),
        cold("100", asset="BTC"),
        cold("100", asset="ETH"),
        liability("90", asset="BTC", when=T0),
        liability("90", asset="ETH", when=T0),
    )
    # fresh BTC figures, wallets and prices; ETH's liability stays as of T0
    late = at(hours=36)
    feed(e, price("1", asset="BTC", when=late), price("1", asset="ETH", when=late))
    feed(e, cold("100", asset="BTC", when=late), liability("90", asset="BTC", when=late))
    assert status_of(e, SEGREGATION) is Status.OK  # exactly 36 h old is still allowed
    feed(e, liability("90", asset="BTC", when=late + timedelta(microseconds=1)))
    assert status_of(e, SEGREGATION) is Status.UNKNOWN
    assert "customer_liability ETH" in assessment_of(e, SEGREGATION).reason
    feed(e, liability("90", asset="ETH", when=late + timedelta(seconds=1)))
    assert status_of(e, SEGREGATION) is Status.OK


def test_segregation_is_unknown_with_stale_wallets_or_an_unpriced_liability() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), cold("100"), cold("0", asset="XRP"), liability("90"))
    feed(e, liability("3", asset="XRP"))
    assert status_of(e, SEGREGATION) is Status.UNKNOWN
    assert assessment_of(e, SEGREGATION).evidence["unpriced"] == ["XRP"]
    feed(e, price("2", asset="XRP"))
    assert status_of(e, SEGREGATION) is Status.BREACH  # XRP owed, none held
    moment(e, at(hours=1, seconds=1))
    assert status_of(e, SEGREGATION) is Status.UNKNOWN
    assert "wallet_balances" in assessment_of(e, SEGREGATION).reason


def test_jp_pack_parameters_are_validated() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            {
                "packs": {
                    "jp": {
                        "hot_wallet_guarantee": {"breach_below": "1.1", "warning_below": "1"},
                        "segregation": {"max_liability_age": "never"},
                    }
                }
            }
        )
    problems = caught.value.problems
    assert any(p.startswith("packs.jp.hot_wallet_guarantee: ") for p in problems), problems
    assert any(p.startswith("packs.jp.segregation.max_liability_age: ") for p in problems)
    assert len(problems) == 2


def test_a_problem_in_an_exchanges_own_params_is_placed_there() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            {
                "exchanges": {
                    "default": {"packs": ["jp"]},
                    "x": {"packs": ["jp"], "params": {"jp": {"segregation": {"hysteresis": -1}}}},
                }
            }
        )
    (problem,) = caught.value.problems
    assert problem.startswith("exchanges.x.params.jp.segregation.hysteresis: ")


# -- the incremental structures against brute force -------------------------------------


def test_keyed_min_tracks_the_smallest_live_value() -> None:
    smallest: KeyedMin[str, Decimal] = KeyedMin()
    assert smallest.smallest() is None
    smallest.set("a", D(3))
    smallest.set("b", D(1))
    smallest.set("b", D(5))
    assert smallest.smallest() == (D(3), "a")
    smallest.set("a", None)
    assert smallest.smallest() == (D(5), "b")
    for n in range(200):  # many stale entries: the heap is rebuilt, not grown
        smallest.set("b", D(n % 7))
    assert smallest.smallest() == (D(199 % 7), "b")
    assert len(smallest._heap) <= 2 * len(smallest.values) + 17


@given(st.permutations(["XRP", "BTC", "ETH", "USDT"]), st.permutations(["XRP", "BTC", "ETH"]))
def test_keyed_min_names_the_same_key_whatever_order_ties_were_set_in(
    order: list[str], again: list[str]
) -> None:
    """An engine rebuilt from its journal sets values in another order than the one
    that journalled them: both must name the same worst asset."""
    smallest: KeyedMin[str, Decimal] = KeyedMin()
    for key in order:
        smallest.set(key, D(1))
    for key in again:  # moved away and back: set again, later
        smallest.set(key, D(2))
        smallest.set(key, D(1))
    assert smallest.smallest() == (D(1), "BTC")


ASSETS = ["BTC", "ETH", "XRP"]
WALLETS = ["w1", "w2", "w3", "w4"]
minutes = st.integers(min_value=0, max_value=90)

wallet_docs = st.builds(
    lambda b, a, w, c, h, m: wallet(
        b, asset=a, wallet_id=w, custody=c, holder=h, when=at(minutes=m)
    ),
    st.sampled_from(["0", "1", "2.5", "7", "10", "100"]),
    st.sampled_from(ASSETS),
    st.sampled_from(WALLETS),
    st.sampled_from(["hot", "cold"]),
    st.sampled_from(["customer", "customer", "guarantee", "house"]),
    minutes,
)
liability_docs = st.builds(
    lambda amount, a, m: liability(amount, asset=a, when=at(minutes=m)),
    st.sampled_from(["0", "1", "3", "9.5", "50"]),
    st.sampled_from(ASSETS),
    minutes,
)
price_docs = st.builds(
    lambda p, a, m: price(p, asset=a, when=at(minutes=m)),
    st.sampled_from(["1", "3", "1000", "0.5"]),
    st.sampled_from(ASSETS),
    minutes,
)
histories = st.lists(st.one_of(wallet_docs, wallet_docs, liability_docs, price_docs), max_size=60)


def _newest(docs: list[Doc], slot: Any) -> dict[Any, Doc]:
    """Newest-ts-wins by slot, first arrival winning ties: what the engine keeps."""
    kept: dict[Any, Doc] = {}
    for doc in docs:
        key = slot(doc)
        if key not in kept or event(doc).ts > event(kept[key]).ts:
            kept[key] = doc
    return kept


def _expected(
    held: dict[str, Decimal], required: dict[str, Decimal], prices: dict[str, Decimal]
) -> dict[str, Any]:
    ctx = MONEY_CONTEXT
    short = {
        a: required[a] - held.get(a, D(0)) for a in required if required[a] > held.get(a, D(0))
    }
    ratios = {
        a: min(ctx.divide(held.get(a, D(0)), q), RATIO_CAP) for a, q in required.items() if q > 0
    }
    worst = min(ratios.values()) if ratios else None
    return {
        "short": short,
        "shortfall_value": sum((q * prices[a] for a, q in short.items() if a in prices), D(0)),
        "required_value": sum((q * prices[a] for a, q in required.items() if a in prices), D(0)),
        "worst": worst,
        "unpriced": {a for a, q in required.items() if q > 0 and a not in prices},
    }


def _actual(cover: Any) -> dict[str, Any]:
    worst = cover.worst()
    return {
        "short": dict(cover.short),
        "shortfall_value": cover.shortfall_value,
        "required_value": cover.required_value,
        "worst": None if worst is None else worst[0],
        "unpriced": set(cover.unpriced),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories, repeats=st.lists(st.integers(min_value=0, max_value=59), max_size=8))
def test_short_sets_and_shortfalls_equal_a_brute_force_recomputation(
    history: list[Doc], repeats: list[int]
) -> None:
    # replays of earlier events (same event ids) are duplicates and change nothing
    docs = history + [dict(history[i]) for i in repeats if i < len(history)]
    e = instant_engine(load_policy())
    feed(e, *docs)
    if EXCHANGE not in e.exchanges:
        return
    holdings = e.exchanges[EXCHANGE].holdings
    snapshots = _newest([d for d in docs if "wallet" in d], lambda d: (d["wallet"], d["asset"]))
    owed = _newest([d for d in docs if d.get("type") == "customer_liability"], lambda d: d["asset"])
    # the prices in force at the exchange's clock: of the prices taken (each newer than
    # every earlier one of its asset), the newest dated at or before the clock
    clock = e.exchanges[EXCHANGE].clock
    assert clock is not None
    taken: dict[str, list[Doc]] = {}
    for doc in docs:
        if "price" in doc:
            kept = taken.setdefault(doc["asset"], [])
            if not kept or event(doc).ts > event(kept[-1]).ts:
                kept.append(doc)
    prices = {}
    for asset, kept in taken.items():
        dated = [p for p in kept if event(p).ts <= clock]
        if dated:
            prices[asset] = D(dated[-1]["price"])
    hot_customer: dict[str, Decimal] = {}
    guaranteed: dict[str, Decimal] = {}
    customer: dict[str, Decimal] = {}
    for doc in snapshots.values():
        quantity, asset = D(doc["balance"]), doc["asset"]
        if doc["holder"] == "guarantee":
            guaranteed[asset] = guaranteed.get(asset, D(0)) + quantity
        elif doc["holder"] == "customer":
            customer[asset] = customer.get(asset, D(0)) + quantity
            if doc["custody"] == "hot":
                hot_customer[asset] = hot_customer.get(asset, D(0)) + quantity
    # the guarantee coverage knows a requirement for every asset that ever had a hot
    # customer position; zero requirements are equivalent to none
    guarantee_required = {a: hot_customer.get(a, D(0)) for a in holdings.guarantee.required}
    assert {a for a, q in hot_customer.items() if q} <= set(guarantee_required)
    assert _actual(holdings.guarantee) == _expected(guaranteed, guarantee_required, prices)
    liabilities = {a: D(o["amount"]) for a, o in owed.items()}
    assert _actual(holdings.segregation) == _expected(customer, liabilities, prices)
    assert holdings.segregation.unstated == {
        a for a, q in customer.items() if q > 0 and a not in liabilities
    }
    oldest = holdings.oldest_liability()
    if owed:
        assert oldest is not None
        assert oldest[0] == min(event(o).ts for o in owed.values())
    else:
        assert oldest is None
    # and the rules read them: the guarantee status follows the brute-force worst ratio
    expected_worst = _expected(guaranteed, guarantee_required, prices)["worst"]
    a = assessment_of(e, GUARANTEE)
    if a.ratio is not None:
        assert a.ratio == (RATIO_CAP if expected_worst is None else expected_worst)


def test_a_wallet_that_changes_holder_moves_its_quantity_between_coverages() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), hot("10"), wallet("10", wallet_id="w", holder="guarantee"))
    assert e.exchanges[EXCHANGE].holdings.guarantee.short == {}
    feed(e, wallet("10", wallet_id="w", holder="house", when=at(minutes=1)))
    assert e.exchanges[EXCHANGE].holdings.guarantee.short == {"BTC": D(10)}
    assert status_of(e, GUARANTEE) is Status.BREACH
