"""Events out of order: late trades land in their own bucket, older snapshots never win."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.engine import Engine, Outcome, journal_key
from monitor.core.policy import load_policy, parse_policy
from tests.unit.builders import T0, Doc, at, feed, price, reserve_fund, trade, wallet

BILLION = 10**9


def test_a_late_trade_lands_in_the_bucket_of_its_own_time_and_leaves_with_it() -> None:
    e = Engine(load_policy())  # jp: 30 days in 1-hour buckets
    feed(e, trade(BILLION, when=at(hours=5)))
    (late,) = feed(e, trade(2 * BILLION, when=at(minutes=30)))
    assert late.outcome is Outcome.APPLIED
    volume = e.exchanges["dmm"].volume
    own_bucket = volume.bucket_of(at(minutes=30))
    written = dict(late.writes)[journal_key("volume", "dmm", own_bucket)]
    assert written is not None and written["amount"] == str(2 * BILLION)
    assert volume.amount(own_bucket) == 2 * BILLION
    assert e.exchanges["dmm"].trading_volume(at(hours=5)) == 3 * BILLION
    # its bucket (13:00) leaves the window 30 days after that hour, before the newer trade's
    assert e.exchanges["dmm"].trading_volume(at(days=29, hours=23, minutes=59)) == 3 * BILLION
    assert e.exchanges["dmm"].trading_volume(at(days=30)) == BILLION
    assert e.exchanges["dmm"].trading_volume(at(days=30, hours=5)) == 0


def test_a_late_trade_outside_the_default_window_of_an_exchange_without_jp_is_stale() -> None:
    policy = parse_policy(
        {
            "reporting_currency": "JPY",
            "packs": {"ops": {}},
            "exchanges": {"default": {"packs": ["ops"]}},
        }
    )
    e = Engine(policy)  # no jp window: volume is kept over the default day, for reporting
    feed(e, trade(BILLION, when=at(days=2)))
    (late,) = feed(e, trade(BILLION, when=T0))
    assert late.outcome is Outcome.STALE
    assert late.writes == []
    assert e.exchanges["dmm"].trading_volume(at(days=2)) == BILLION


def _snapshot(kind: str, minutes: int, amount: int) -> Doc:
    when = T0 + timedelta(minutes=minutes)
    if kind == "wallet":
        return wallet(str(amount), when=when)
    if kind == "fund":
        return reserve_fund(amount, when=when)
    return price(str(amount), when=when)


def _held(e: Engine, kind: str) -> tuple[object, object]:
    """(ts, amount) of the snapshot the engine holds."""
    if kind == "wallet":
        held = e.exchanges["dmm"].holdings.snapshots[("btc-cold-1", "BTC")]
        return held.ts, held.balance
    if kind == "fund":
        fund = e.exchanges["dmm"].ledger.reserve_fund
        assert fund is not None
        return fund.ts, fund.amount
    latest = e.prices.latest("BTC")
    assert latest is not None
    return latest.ts, latest.price


@pytest.mark.parametrize("kind", ["wallet", "fund", "price"])
@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(6)), amounts=st.lists(st.integers(1, 10**6), min_size=6))
def test_in_any_order_the_newest_snapshot_wins_and_every_older_one_is_stale(
    kind: str, order: list[int], amounts: list[int]
) -> None:
    e = Engine(load_policy())
    newest_so_far = -1
    for minutes in order:
        (step,) = feed(e, _snapshot(kind, minutes, amounts[minutes]))
        if minutes > newest_so_far:
            assert step.outcome is Outcome.APPLIED
            newest_so_far = minutes
        else:
            assert step.outcome is Outcome.STALE
            assert step.writes == []
    assert _held(e, kind) == (at(minutes=5), amounts[5])
