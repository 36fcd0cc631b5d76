"""The journal the engine writes: its keys, how much it writes, and what a restore gets back."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.engine import Engine, Outcome, Step, journal_key
from monitor.core.money import amount_text, percent_text
from monitor.core.output.report import adequacy_report
from monitor.core.policy import Policy, load_policy
from monitor.core.state.recent import BLOCK, RecentIds
from monitor.core.status import Status
from tests.unit.builders import (
    at,
    changes,
    event,
    feed,
    liability,
    moment,
    price,
    reserve_fund,
    status_of,
    trade,
    wallet,
)

LIABILITY = "jp.liability_reserve"
BILLION = 10**9


def _journal(steps: list[Step], journal: dict[str, Any]) -> None:
    for step in steps:
        for key, value in step.writes:
            if value is None:
                journal.pop(key, None)
            else:
                journal[key] = value


def _restored(policy: Policy, journal: dict[str, Any], seed: int = 0) -> Engine:
    restored = Engine(policy)
    entries = list(journal.items())
    random.Random(seed).shuffle(entries)
    for key, value in entries:
        restored.restore(key, value)
    return restored


def _kinds(step: Step) -> list[str]:
    return [json.loads(key)[0] for key, _ in step.writes]


def test_every_key_but_a_price_names_the_exchange_second() -> None:
    # the worker places each entry on the partition of json.loads(key)[1]
    e = Engine(load_policy())
    steps = feed(
        e,
        price("10000000"),
        reserve_fund(3 * BILLION),
        wallet("96"),
        wallet("4", custody="hot", wallet_id="btc-hot-1", exchange="bf"),
        wallet("1", custody="hot", wallet_id="btc-hot-1", exchange="bf", when=at(minutes=1)),
        trade(BILLION, when=at(minutes=2)),
        liability("100", when=at(minutes=3)),
    )
    steps.append(moment(e, at(days=40)))
    keys = [json.loads(key) for step in steps for key, _ in step.writes]
    kinds = {key[0] for key in keys}
    assert {"price", "clock", "feed", "seen", "volume", "rule", "wallet", "ledger"} <= kinds
    assert all(key[1] in ("dmm", "bf") for key in keys if key[0] != "price")


def test_an_exchange_event_writes_a_bounded_number_of_entries() -> None:
    e = Engine(load_policy())
    feed(e, price("10000000"), reserve_fund(3 * BILLION), wallet("96"))
    for minute in range(1, 200):
        (step,) = feed(e, trade(BILLION, when=at(minutes=minute)))
        assert step.outcome is Outcome.APPLIED
        assert len([kind for kind in _kinds(step) if kind != "rule"]) <= 5
        # the moment opened, then judged (apply judges at once): one entry, as it is now
        assert _kinds(step).count("clock") == 1
        assert _kinds(step).count("feed") == 1


def test_the_clock_moves_only_forward_and_the_trades_feed_only_when_it_moves() -> None:
    e = Engine(load_policy())
    feed(e, reserve_fund(3 * BILLION), trade(BILLION, when=at(minutes=30)))
    older = e.take(event(trade(BILLION, when=at(minutes=10))))  # within the window: applied
    assert older.outcome is Outcome.APPLIED
    older.writes = e.journal_writes()
    assert "feed" not in _kinds(older)
    # a late record re-opens the newest moment; the clock stays there, and the moment's
    # evidence will list the late record, after a restart too
    ((clock),) = journal_entries(older, "clock")
    assert clock["ts"] == "2024-05-31T13:30:00Z" and clock["open"] is True
    assert [(r["record"], r["ts"]) for r in clock["late"]] == [("trade", "2024-05-31T13:10:00Z")]
    e.finish()
    assert journal_entries(Step(writes=e.journal_writes()), "clock") == [
        {"ts": "2024-05-31T13:30:00Z", "open": False}
    ]


def test_a_price_dated_after_an_exchanges_clock_is_a_moment_of_each_exchange_holding_it() -> None:
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    history = [
        price("10000000"),
        wallet("96"),
        wallet("50", exchange="bf"),
        reserve_fund(3 * BILLION, exchange="ftx"),  # holds no BTC: not its moment
        price("11000000", when=at(hours=2)),
    ]
    steps = feed(original, *history)
    assert steps[-1].evaluated == ["bf", "dmm"]
    _journal(steps, journal)
    restored = _restored(policy, journal)
    for name in ("bf", "dmm"):
        assert restored.exchanges[name].clock == original.exchanges[name].clock == at(hours=2)
    assert restored.exchanges["ftx"].clock == original.exchanges["ftx"].clock == at()


def journal_entries(step: Step, kind: str) -> list[Any]:
    return [value for key, value in step.writes if json.loads(key)[0] == kind]


def test_a_restored_engine_keeps_the_clock_a_record_moved() -> None:
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    steps = feed(original, reserve_fund(3 * BILLION))
    steps.append(moment(original, at(hours=37)))  # the fund is too old now
    _journal(steps, journal)
    restored = _restored(policy, journal)
    assert restored.exchanges["dmm"].clock == original.exchanges["dmm"].clock == at(hours=37)
    assert status_of(restored, LIABILITY) is Status.UNKNOWN
    # a late wallet snapshot is judged at the same time by both: the fund stays too old
    late = [wallet("1", when=at(hours=1))]
    assert [c.status for c in changes(feed(original, *late)) if c.rule == LIABILITY] == []
    assert [c.status for c in changes(feed(restored, *late)) if c.rule == LIABILITY] == []
    assert adequacy_report(restored, "dmm").to_document() == (
        adequacy_report(original, "dmm").to_document()
    )


def test_a_fund_moving_out_of_a_currency_stops_its_prices_reevaluating_the_exchange() -> None:
    e = Engine(load_policy())
    feed(e, price("150", asset="USD"), reserve_fund(20_000_000, currency="USD", exchange="bf"))
    (step,) = feed(e, price("151", asset="USD", when=at(minutes=1)))
    assert step.evaluated == ["bf"]
    feed(e, reserve_fund(3 * BILLION, exchange="bf", when=at(minutes=2)))
    (step,) = feed(e, price("152", asset="USD", when=at(minutes=3)))
    assert step.evaluated == []


def test_a_currency_still_held_keeps_its_prices_reevaluating_the_exchange() -> None:
    e = Engine(load_policy())
    feed(
        e,
        price("150", asset="USDT"),
        wallet("10", asset="USDT", exchange="bf"),
        reserve_fund(20_000_000, currency="USDT", exchange="bf"),
        reserve_fund(3 * BILLION, exchange="bf", when=at(minutes=2)),
    )
    (step,) = feed(e, price("152", asset="USDT", when=at(minutes=3)))
    assert step.evaluated == ["bf"]


@given(parts=st.lists(st.text() | st.integers(), min_size=1, max_size=5))
def test_a_journal_key_is_the_compact_json_of_its_parts(parts: list[str | int]) -> None:
    key = journal_key(*parts)
    assert key == json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(key) == parts


def test_recent_ids_restored_in_any_order_forget_the_oldest_first() -> None:
    capacity = BLOCK + 2
    original = RecentIds(capacity)
    journal: dict[int, dict[str, int]] = {}
    history = [f"h-{n}" for n in range(2 * BLOCK + 5)]
    for event_id in history:
        original.add(event_id)
        for block, ids in original.journal():
            if ids is None:
                del journal[block]
            else:
                journal[block] = ids
    assert 0 not in journal  # every id of the first block is forgotten
    further = [f"f-{n}" for n in range(BLOCK)]
    for seed in range(6):
        blocks = list(journal.items())
        random.Random(seed).shuffle(blocks)
        restored = RecentIds(capacity)
        for _, ids in blocks:
            restored.restore(ids)
        assert [i in restored for i in history] == [i in original for i in history]
        twin = RecentIds(capacity)  # the original, going on
        for event_id in history:
            twin.add(event_id)
        twin.journal()
        for event_id in further:
            restored.add(event_id)
            twin.add(event_id)
            assert restored.journal() == twin.journal()
        assert [i in restored for i in history] == [i in twin for i in history]
        assert len(restored) == capacity


def test_amounts_and_shares_for_people() -> None:
    assert amount_text(Decimal("1307053280"), "JPY") == "1,307,053,280 JPY"
    assert amount_text(Decimal("1234.5"), "USD") == "1,234.50 USD"
    assert amount_text(Decimal("0"), "JPY") == "0 JPY"
    assert percent_text(Decimal("0.892857")) == "89.29%"
    assert percent_text(Decimal("1")) == "100%"
    assert percent_text(Decimal("0.95")) == "95%"


def test_reasons_read_as_percentages_and_grouped_amounts() -> None:
    e = Engine(load_policy())
    feed(e, price("10000000"), wallet("100"))
    cold = e.exchanges["dmm"].rules["jp.cold_storage"].assessment
    assert cold is not None
    assert cold.reason == "Cold storage holds 100% of customer crypto value (minimum 95%)."
    feed(e, trade(1_000 * BILLION), reserve_fund(2 * BILLION))
    reserve = e.exchanges["dmm"].rules[LIABILITY].assessment
    assert reserve is not None
    assert reserve.reason.startswith(
        "Reserve fund plus eligible insurance cover 40% of the 5,000,000,000 JPY floor; "
        "add 3,000,000,000 JPY"
    )
    assert reserve.shortfall == 3 * BILLION  # the machine-readable fields are untouched


def test_trades_waiting_for_a_price_survive_a_restore_and_count_once_it_comes() -> None:
    policy = load_policy()
    e, journal = Engine(policy), {}
    _journal(
        feed(
            e,
            trade(1000, currency="USDT", event_id="t-1"),
            trade(2000, currency="USDT", event_id="t-2", when=at(minutes=5)),
        ),
        journal,
    )
    assert json.loads(next(k for k in journal if k.startswith('["awaiting"')))[2] == "USDT"
    for seed in range(3):
        restored = _restored(policy, journal, seed)
        assert restored.exchanges["dmm"].awaiting_trades() == 2
        # the ids were journalled with them: a redelivered trade is a duplicate
        assert restored.apply(event(trade(1000, currency="USDT", event_id="t-1"))).outcome is (
            Outcome.DUPLICATE
        )
        _journal([restored.apply(event(price("150", asset="USDT", when=at(minutes=6))))], {})
        assert restored.exchanges["dmm"].trading_volume(at(minutes=6)) == 450_000
    # once counted, the volume is journalled and the waiting entry is gone
    _journal(feed(e, price("150", asset="USDT", when=at(minutes=6))), journal)
    assert not any(k.startswith('["awaiting"') for k in journal)
    again = _restored(policy, journal)
    assert again.exchanges["dmm"].trading_volume(at(minutes=6)) == 450_000
    assert again.exchanges["dmm"].awaiting == {}
