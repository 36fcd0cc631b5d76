"""The engine: outcomes, status changes, deterministic ids, and restore from its journal."""

from __future__ import annotations

import itertools
import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.engine import Engine, Outcome, Step, journal_key
from monitor.core.events import Price
from monitor.core.output.report import adequacy_report
from monitor.core.policy import Policy, load_policy, parse_policy
from monitor.core.state.recent import BLOCK
from monitor.core.status import Status
from tests.unit.builders import (
    T0,
    Doc,
    at,
    changes,
    event,
    feed,
    insurance,
    liability,
    moment,
    price,
    reserve_fund,
    status_of,
    trade,
    wallet,
)

LIABILITY = "jp.liability_reserve"
COLD = "jp.cold_storage"
BILLION = 10**9


def billions(amount: float) -> int:
    return int(amount * BILLION)


def one(e: Engine, doc: Doc) -> Step:
    (step,) = feed(e, doc)
    return step


# -- outcomes ------------------------------------------------------------------------


def test_each_kind_of_event_is_applied_with_a_journal_write() -> None:
    e = Engine(load_policy())
    for doc in [
        price("10000000"),
        trade(),
        wallet("1"),
        liability("1"),
        reserve_fund(BILLION),
        insurance(1, valid_from=at(days=-1), valid_to=at(days=1)),
    ]:
        step = one(e, doc)
        assert step.outcome is Outcome.APPLIED, doc
        assert step.error is None
        assert step.writes, doc


def test_a_repeated_event_id_is_a_duplicate_and_changes_nothing() -> None:
    e = Engine(load_policy())
    feed(e, reserve_fund(3 * BILLION), trade(BILLION, event_id="t-1"))
    step = one(e, trade(BILLION, event_id="t-1"))
    assert step.outcome is Outcome.DUPLICATE
    assert step.changes == [] and step.writes == []
    assert e.exchanges["dmm"].trading_volume(T0) == BILLION  # counted once


def test_the_same_event_id_at_another_exchange_is_not_a_duplicate() -> None:
    e = Engine(load_policy())
    feed(e, trade(event_id="t-1", exchange="dmm"))
    assert one(e, trade(event_id="t-1", exchange="bitflyer")).outcome is Outcome.APPLIED


def test_a_repeated_wallet_event_is_a_duplicate_even_with_another_balance() -> None:
    e = Engine(load_policy())
    feed(e, wallet("5", event_id="w-1"))
    step = one(e, wallet("9", event_id="w-1", when=at(seconds=1)))
    assert step.outcome is Outcome.DUPLICATE
    assert e.exchanges["dmm"].holdings.snapshots[("btc-cold-1", "BTC")].balance == 5


@pytest.mark.parametrize(
    "not_applied",
    [
        trade(BILLION, event_id="t-1", when=at(hours=40)),  # a duplicate of t-1
        price("1", currency="USD", when=at(hours=40)),  # invalid: not in JPY
    ],
    ids=["duplicate", "invalid-price"],
)
def test_an_event_that_is_not_applied_does_not_move_the_clock(not_applied: Doc) -> None:
    # "a repeated event_id ... is a duplicate and changes nothing"; a rejected message
    # is dead-lettered. Neither may age every figure of the exchange by moving time.
    e = Engine(load_policy())
    feed(e, reserve_fund(3 * BILLION), trade(BILLION, event_id="t-1"))
    step = one(e, not_applied)
    assert step.outcome in (Outcome.DUPLICATE, Outcome.INVALID)
    assert e.clock == T0
    feed(e, wallet("1", when=at(minutes=1)))
    assert status_of(e, LIABILITY) is Status.OK


def test_a_wallet_snapshot_older_than_the_one_held_is_stale() -> None:
    e = Engine(load_policy())
    feed(e, wallet("5", when=at(minutes=10)))
    for when in (at(minutes=5), at(minutes=10)):  # older, and the same instant
        step = one(e, wallet("7", when=when))
        assert step.outcome is Outcome.STALE
        assert step.writes == []
    assert e.exchanges["dmm"].holdings.snapshots[("btc-cold-1", "BTC")].balance == 5


def test_a_snapshot_of_another_wallet_at_an_older_time_is_applied() -> None:
    e = Engine(load_policy())
    feed(e, wallet("5", when=at(minutes=10)))
    assert one(e, wallet("7", wallet_id="other", when=T0)).outcome is Outcome.APPLIED


def test_a_ledger_figure_older_than_the_one_held_is_stale() -> None:
    e = Engine(load_policy())
    feed(e, reserve_fund(3 * BILLION, when=at(minutes=10)))
    for when in (T0, at(minutes=10)):  # older, and the same instant
        step = one(e, reserve_fund(BILLION, when=when))
        assert step.outcome is Outcome.STALE
        assert step.writes == []
    assert e.exchanges["dmm"].ledger.reserve_fund is not None
    assert e.exchanges["dmm"].ledger.reserve_fund.amount == 3 * BILLION


def test_a_trade_older_than_the_volume_window_is_stale() -> None:
    e = Engine(load_policy())
    feed(e, trade(BILLION, when=at(days=31)))
    step = one(e, trade(BILLION, when=T0))
    assert step.outcome is Outcome.STALE
    assert e.exchanges["dmm"].trading_volume(at(days=31)) == BILLION


def test_a_price_older_than_the_one_held_is_stale() -> None:
    e = Engine(load_policy())
    feed(e, price("2", when=at(minutes=1)))
    assert one(e, price("1", when=T0)).outcome is Outcome.STALE
    latest = e.prices.latest("BTC")
    assert latest is not None and latest.price == 2


def test_a_repeated_price_event_is_a_duplicate() -> None:
    e = Engine(load_policy())
    feed(e, price("2", event_id="p-1"))
    assert one(e, price("2", event_id="p-1")).outcome is Outcome.DUPLICATE


def test_a_trade_before_the_first_price_of_its_currency_waits_for_it() -> None:
    e = Engine(load_policy())
    step = one(e, trade(100, currency="USDT", event_id="t-1"))
    assert step.outcome is Outcome.APPLIED and step.error is None
    assert e.exchanges["dmm"].trading_volume(T0) == 0  # not counted yet: no price converts it
    assert one(e, trade(100, currency="USDT", event_id="t-1")).outcome is Outcome.DUPLICATE
    feed(e, price("150", asset="USDT"))
    assert e.exchanges["dmm"].trading_volume(T0) == 15000  # counted at the price that came
    assert one(e, trade(100, currency="USDT", event_id="t-2")).outcome is Outcome.APPLIED
    assert e.exchanges["dmm"].trading_volume(T0) == 30000
    assert e.exchanges["dmm"].awaiting == {}


def test_a_price_not_in_the_reporting_currency_is_invalid() -> None:
    e = Engine(load_policy())
    step = one(e, price("67000", currency="USD"))
    assert step.outcome is Outcome.INVALID
    assert step.error is not None and step.error.startswith("currency: ")
    assert e.prices.latest("BTC") is None


# -- status changes ------------------------------------------------------------------


def test_the_first_evaluation_is_a_change_from_unknown() -> None:
    e = Engine(load_policy())
    step = one(e, reserve_fund(3 * BILLION))
    (change,) = [c for c in step.changes if c.rule == LIABILITY]
    assert (change.previous, change.status) == (Status.UNKNOWN, Status.OK)
    assert change.sequence == 1
    assert change.as_of == T0
    assert change.exchange == "dmm"


def test_a_rule_that_stays_unknown_raises_no_change() -> None:
    e = Engine(load_policy())
    steps = feed(e, trade(), wallet("1"))  # no fund, no price: both rules unknown
    assert [c for c in changes(steps) if c.rule in (LIABILITY, COLD)] == []
    assert status_of(e, LIABILITY) is Status.UNKNOWN


def test_status_changes_only_when_the_status_changes() -> None:
    e = Engine(load_policy())
    steps = feed(
        e,
        reserve_fund(3 * BILLION),
        reserve_fund(4 * BILLION, when=at(minutes=1)),  # still ok
        reserve_fund(BILLION, when=at(minutes=2)),  # breach
        reserve_fund(billions(1.5), when=at(minutes=3)),  # still breach
        reserve_fund(3 * BILLION, when=at(minutes=4)),  # ok again
    )
    reserve = [c for c in changes(steps) if c.rule == LIABILITY]
    assert [(c.previous, c.status, c.sequence) for c in reserve] == [
        (Status.UNKNOWN, Status.OK, 1),
        (Status.OK, Status.BREACH, 2),
        (Status.BREACH, Status.OK, 3),
    ]
    assert [c.as_of for c in reserve] == [T0, at(minutes=2), at(minutes=4)]
    assert [c.touches_breach for c in reserve] == [False, True, True]


def test_change_ids_are_deterministic_across_engines() -> None:
    story = _story()
    first = [c.id for c in changes(feed(Engine(load_policy()), *story))]
    second = [c.id for c in changes(feed(Engine(load_policy()), *story))]
    assert first == second
    assert len(first) >= 4


def test_change_ids_are_distinct_between_changes() -> None:
    ids = [c.id for c in changes(feed(Engine(load_policy()), *_story()))]
    assert len(ids) == len(set(ids))


def test_the_same_transition_again_gets_a_new_id() -> None:
    e = Engine(load_policy())
    steps = feed(
        e,
        reserve_fund(3 * BILLION),
        reserve_fund(BILLION, when=at(minutes=1)),
        reserve_fund(3 * BILLION, when=at(minutes=2)),
        reserve_fund(BILLION, when=at(minutes=3)),
    )
    ok_to_breach = [
        c.id for c in changes(steps) if c.rule == LIABILITY and c.status is Status.BREACH
    ]
    assert len(ok_to_breach) == 2
    assert ok_to_breach[0] != ok_to_breach[1]


def test_exchanges_are_judged_independently() -> None:
    e = Engine(load_policy())
    steps = feed(
        e,
        reserve_fund(3 * BILLION, exchange="dmm"),
        reserve_fund(BILLION, exchange="bitflyer"),
    )
    assert status_of(e, LIABILITY, "dmm") is Status.OK
    assert status_of(e, LIABILITY, "bitflyer") is Status.BREACH
    reserve = [c for c in changes(steps) if c.rule == LIABILITY]
    assert {c.exchange for c in reserve} == {"dmm", "bitflyer"}
    assert len({c.id for c in reserve}) == 2


def test_each_exchange_is_judged_at_its_own_moments_and_the_changes_journalled() -> None:
    e = Engine(load_policy())
    feed(e, reserve_fund(3 * BILLION, exchange="a"), reserve_fund(3 * BILLION, exchange="b"))
    # a's time moves on with a's own record; b's does not
    step = moment(e, at(hours=37), exchange="a")
    assert step.evaluated == ["a"]
    assert {(c.exchange, c.status) for c in step.changes if c.rule == LIABILITY} == {
        ("a", Status.UNKNOWN)
    }
    assert (journal_key("rule", "a", LIABILITY), {"status": "unknown", "changes": 2}) in step.writes
    assert status_of(e, LIABILITY, "b") is Status.OK


def test_evicted_volume_buckets_are_journalled_as_deletions() -> None:
    e = Engine(load_policy())
    (step,) = feed(e, trade(BILLION), reserve_fund(3 * BILLION))[:1]
    (volume_key,) = [k for k, v in step.writes if k.startswith('["volume"')]
    feed(e, reserve_fund(3 * BILLION, when=at(days=29)))  # the rule reads the volume
    later = moment(e, at(days=30))
    assert (volume_key, None) in later.writes


def test_the_seen_ids_are_bounded_and_forgetting_is_journalled() -> None:
    e = Engine(load_policy(), seen_ids=2)
    steps = feed(e, *(trade(event_id=f"t-{n}", when=at(minutes=n)) for n in range(3)))
    assert (journal_key("seen", "dmm", 0), {"ids": {"t-1": 1, "t-2": 2}}) in steps[-1].writes
    assert one(e, trade(event_id="t-2")).outcome is Outcome.DUPLICATE
    assert one(e, trade(event_id="t-0", when=at(minutes=5))).outcome is Outcome.APPLIED


def test_a_block_of_seen_ids_leaves_the_journal_once_all_its_ids_are_forgotten() -> None:
    e = Engine(load_policy(), seen_ids=BLOCK)
    ids = [f"t-{n}" for n in range(2 * BLOCK)]
    steps = feed(e, *(trade(event_id=i, when=at(seconds=n)) for n, i in enumerate(ids)))
    deleted = [n for n, s in enumerate(steps) if (journal_key("seen", "dmm", 0), None) in s.writes]
    assert deleted == [2 * BLOCK - 1]  # when the last id of block 0 is forgotten
    assert one(e, trade(event_id=ids[BLOCK], when=at(days=1))).outcome is Outcome.DUPLICATE


# -- restore from the journal ------------------------------------------------------


def _story() -> list[Doc]:
    """Two exchanges over two days: prices, wallets, ledger, trades, a breach, a fix."""
    return [
        price("10000000", when=T0),
        price("150", asset="USD", when=T0),
        reserve_fund(3 * BILLION, when=T0),
        reserve_fund(10_000_000, currency="USD", exchange="bf", when=T0),
        insurance(BILLION, valid_from=at(days=-1), valid_to=at(hours=20), when=T0),
        wallet("96", when=T0),
        wallet("4", custody="hot", wallet_id="btc-hot-1", when=T0),
        wallet("50", exchange="bf", when=T0),
        trade(900 * BILLION, when=at(minutes=5)),
        trade(100 * BILLION, when=at(minutes=7), exchange="bf"),
        wallet("90", when=at(minutes=30)),  # a hot-wallet-heavy moment: cold breach
        price("9000000", when=at(minutes=40)),
        liability("100", when=at(minutes=45)),
        reserve_fund(2 * BILLION, when=at(hours=1)),  # liability reserve breach
        wallet("100", when=at(hours=1, minutes=10)),
        price("160", asset="USD", when=at(hours=1, minutes=15)),
        trade(50 * BILLION, when=at(hours=1, minutes=20)),
        reserve_fund(7 * BILLION, when=at(hours=2)),
    ]


def _further() -> list[Doc]:
    """What comes after a restart: out-of-order events, an expiry, a stale ledger."""
    return [
        trade(10 * BILLION, when=at(hours=1, minutes=50), exchange="bf"),
        wallet("5", custody="hot", wallet_id="btc-hot-1", when=at(hours=2, minutes=5)),
        price("9500000", when=at(hours=2, minutes=10)),
        reserve_fund(20_000_000, currency="USD", exchange="bf", when=at(hours=3)),
        wallet("100", when=at(hours=3, minutes=30)),
        wallet("50", exchange="bf", when=at(hours=3, minutes=30)),
        price("9500000", when=at(hours=3, minutes=40)),
        reserve_fund(BILLION, when=at(hours=21)),  # the insurance has expired by now
        wallet("51", exchange="bf", when=at(hours=21)),
        reserve_fund(BILLION, exchange="bf", when=at(hours=59)),  # dmm's ledger is stale now
    ]


def _journal(steps: list[Step], journal: dict[str, Any]) -> None:
    for step in steps:
        for key, value in step.writes:
            if value is None:
                journal.pop(key, None)
            else:
                journal[key] = value


def _restored(policy: Policy, journal: dict[str, Any], seed: int, **options: Any) -> Engine:
    return _restore_into(Engine(policy, **options), journal, seed)


def _restore_into(engine: Engine, journal: dict[str, Any], seed: int) -> Engine:
    """``engine`` with the journal's entries put back, in an order ``seed`` shuffles."""
    entries = list(journal.items())
    random.Random(seed).shuffle(entries)
    for key, value in entries:
        engine.restore(key, value)
    return engine


def _comparable(steps: list[Step]) -> list[tuple[Any, ...]]:
    return [
        (c.id, c.exchange, c.rule, c.previous, c.status, c.sequence, c.as_of, c.assessment)
        for c in changes(steps)
    ]


def _reports(e: Engine) -> dict[str, Any]:
    return {name: adequacy_report(e, name).to_document() for name in sorted(e.exchanges)}


def _assert_same_future(
    original: Engine, restored: Engine, further: list[Doc]
) -> list[tuple[Any, ...]]:
    expected, actual = feed(original, *further), feed(restored, *further)
    assert [s.outcome for s in actual] == [s.outcome for s in expected]
    assert _comparable(actual) == _comparable(expected)
    assert _reports(restored) == _reports(original)
    return _comparable(expected)


@pytest.mark.parametrize("seed", range(5))
def test_an_engine_restored_from_its_journal_in_any_order_behaves_the_same(seed: int) -> None:
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    story = _story()
    _journal(feed(original, *story), journal)
    restored = _restored(policy, journal, seed)
    redelivered = story[8]  # a trade delivered again after the restart: a duplicate
    future = _assert_same_future(original, restored, [redelivered, *_further()])
    assert len(future) >= 3  # the future holds status changes worth comparing


def _as_isoformat(document: Any) -> Any:
    """A journal document's times as ``datetime.isoformat()`` wrote them before session 14
    ("2024-05-31T13:00:00+00:00"), not as RFC 3339 with a Z."""
    if isinstance(document, dict):
        return {name: _as_isoformat(value) for name, value in document.items()}
    if isinstance(document, list):
        return [_as_isoformat(value) for value in document]
    if isinstance(document, str) and document.endswith("Z") and document[10:11] == "T":
        return datetime.fromisoformat(document).isoformat()
    return document


def test_a_journal_written_with_isoformat_times_restores_the_same_engine() -> None:
    """The journal writes times as RFC 3339 with a Z (msgspec, in C) since session 14;
    a changelog an earlier worker wrote, "+00:00", is read back alike."""
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    _journal(feed(original, *_story()), journal)
    written = json.dumps(journal)
    older = {key: _as_isoformat(document) for key, document in journal.items()}
    assert "+00:00" in json.dumps(older) and "+00:00" not in written
    restored = _restored(policy, older, seed=0)
    future = _assert_same_future(original, restored, _further())
    assert len(future) >= 3


def test_a_restored_engine_keeps_the_clock_of_a_trade_that_came_last() -> None:
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    _journal(feed(original, reserve_fund(3 * BILLION), trade(BILLION, when=at(hours=37))), journal)
    restored = _restored(policy, journal, seed=0)
    assert restored.clock == original.clock
    # an out-of-order wallet after the restart is judged at the same time by both
    _assert_same_future(original, restored, [wallet("1", when=at(hours=1))])


def test_a_restored_engine_remembers_the_last_trade_after_its_volume_left_the_window() -> None:
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    _journal(feed(original, trade(BILLION), reserve_fund(3 * BILLION, when=at(days=31))), journal)
    restored = _restored(policy, journal, seed=0)
    assert restored.exchanges["dmm"].feeds == original.exchanges["dmm"].feeds


def test_a_restored_engine_refuses_the_same_old_trades_as_the_original() -> None:
    # The original's window has moved on to its clock (31 days); a trade from day 0 is
    # stale there, and must be stale after a restart too, not counted and journalled.
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    _journal(feed(original, reserve_fund(3 * BILLION, when=at(days=31))), journal)
    restored = _restored(policy, journal, seed=0)
    old = trade(BILLION, when=T0)
    assert one(original, old).outcome is Outcome.STALE
    assert one(restored, old).outcome is Outcome.STALE
    assert _reports(restored) == _reports(original)


def test_a_restored_engine_forgets_the_same_event_ids_as_the_original() -> None:
    # Engine.restore promises "any order"; the bounded set of seen ids must still forget
    # the oldest id first, or a re-delivered trade is counted twice after a restart.
    policy = load_policy()
    history = [trade(BILLION, event_id=f"t-{n}", when=at(minutes=n)) for n in range(4)]
    further = [trade(BILLION, event_id="t-9", when=at(minutes=9)), history[-1]]
    for seed in range(6):
        original = Engine(policy, seen_ids=3)
        journal: dict[str, Any] = {}
        _journal(feed(original, *history), journal)
        restored = _restored(policy, journal, seed, seen_ids=3)
        expected = [s.outcome for s in feed(original, *further)]
        assert expected == [Outcome.APPLIED, Outcome.DUPLICATE]
        assert [s.outcome for s in feed(restored, *further)] == expected, f"seed {seed}"


def test_a_restored_engine_reevaluates_on_the_same_prices_as_the_original() -> None:
    # bf's fund was once in USD, now in JPY. Whether a USD price re-evaluates bf must not
    # depend on history the journal does not keep, or the two emit different changes.
    policy = load_policy()
    original = Engine(policy)
    journal: dict[str, Any] = {}
    history = [
        price("150", asset="USD"),
        reserve_fund(20_000_000, currency="USD", exchange="bf"),
        reserve_fund(3 * BILLION, exchange="bf", when=at(minutes=1)),
    ]
    _journal(feed(original, *history), journal)
    restored = _restored(policy, journal, seed=0)
    _assert_same_future(original, restored, [price("160", asset="USD", when=at(hours=37))])


def test_restore_refuses_an_unknown_journal_key() -> None:
    with pytest.raises(ValueError, match="unknown journal key"):
        Engine(load_policy()).restore(journal_key("mystery", "dmm"), {})


# -- property: restore from a random history ------------------------------------------

EXCHANGES = ["dmm", "bf"]
minutes = st.integers(min_value=0, max_value=60 * 48)


def _when(minute: int) -> Any:
    return T0 + timedelta(minutes=minute)


documents = st.one_of(
    st.builds(
        lambda n, m, x, cur: trade(n, when=_when(m), exchange=x, currency=cur),
        st.sampled_from([10**9, 10**11, 10**12, 3 * 10**12]),
        minutes,
        st.sampled_from(EXCHANGES),
        st.sampled_from(["JPY", "JPY", "USD"]),
    ),
    st.builds(
        lambda b, a, w, c, m, x: wallet(
            b, asset=a, wallet_id=w, custody=c, when=_when(m), exchange=x
        ),
        st.sampled_from(["0", "1", "5", "95", "100"]),
        st.sampled_from(["BTC", "ETH"]),
        st.sampled_from(["w1", "w2"]),
        st.sampled_from(["hot", "cold"]),
        minutes,
        st.sampled_from(EXCHANGES),
    ),
    st.builds(
        lambda p, a, m: price(p, asset=a, when=_when(m)),
        st.sampled_from(["100", "150", "10000000"]),
        st.sampled_from(["BTC", "ETH", "USD"]),
        minutes,
    ),
    st.builds(
        lambda amount, cur, m, x: reserve_fund(amount, currency=cur, when=_when(m), exchange=x),
        st.sampled_from([10**9, 3 * 10**9, 6 * 10**9, 2 * 10**7]),
        st.sampled_from(["JPY", "JPY", "USD"]),
        minutes,
        st.sampled_from(EXCHANGES),
    ),
    st.builds(
        lambda c, start, length, m, x: insurance(
            c,
            valid_from=_when(start),
            valid_to=_when(start + length),
            when=_when(m),
            exchange=x,
        ),
        st.sampled_from([10**9, 5 * 10**8]),
        minutes,
        st.integers(min_value=1, max_value=600),
        minutes,
        st.sampled_from(EXCHANGES),
    ),
)


# the restart properties: a journal written at any point restores the same engine
restarts = settings(
    max_examples=60,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SHORT_WINDOW = {"packs": {"jp": {"liability_reserve": {"volume_window": "2h"}}}}


@restarts
@given(
    before=st.lists(documents, min_size=1, max_size=25),
    after=st.lists(documents, max_size=15),
    seed=st.integers(min_value=0, max_value=2**16),
    reused=st.lists(st.sampled_from(["a", "b", None, None, None]), min_size=40, max_size=40),
)
def test_restore_from_any_history_gives_the_same_future(
    before: list[Doc], after: list[Doc], seed: int, reused: list[str | None]
) -> None:
    for doc, event_id in zip(before + after, reused, strict=False):
        if event_id is not None:
            doc["event_id"] = event_id  # repeated ids: duplicates across the restart
    policy = parse_policy(SHORT_WINDOW)  # a 2h volume window, so buckets leave it
    original = Engine(policy)
    journal: dict[str, Any] = {}
    _journal(feed(original, *before), journal)
    # as the worker restores: the price history taken again (read back from market.prices:
    # an engine journals the latest price of each asset only), then the rest of the journal
    restored = Engine(policy)
    for e in map(event, before):
        if isinstance(e, Price):
            restored.take(e)
    not_prices = {k: v for k, v in journal.items() if not k.startswith('["price"')}
    _restore_into(restored, not_prices, seed)
    # every exchange hears once more after the restart, so both have evaluated each
    last = max(event(doc).ts for doc in before + after)
    wake = [reserve_fund(BILLION, exchange=x, when=last + timedelta(seconds=1)) for x in EXCHANGES]
    _assert_same_future(original, restored, after + wake)


# append-time gaps between records, in ms: within and beyond the quiet gap (100 ms)
append_gaps = st.lists(st.sampled_from([0, 1, 40, 99, 100, 150, 2_000]), min_size=40, max_size=40)


@restarts
@given(
    docs=st.lists(documents, min_size=2, max_size=35),
    gaps=append_gaps,
    cut=st.integers(min_value=1, max_value=34),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_a_task_restored_at_any_record_with_quiet_gaps_judges_as_if_never_stopped(
    docs: list[Doc], gaps: list[int], cut: int, seed: int
) -> None:
    """The worker's restore: prices before the cut taken again as history (they are read
    back from market.prices, not journalled), then the journal of everything else; the
    records after the cut then give the same changes, quiet gaps and all."""
    cut = min(cut, len(docs) - 1)
    appended = list(
        itertools.accumulate(
            gaps[: len(docs)], lambda last, gap: last + timedelta(milliseconds=gap), initial=T0
        )
    )[1:]
    events = [event(doc) for doc in docs]
    policy = load_policy()
    original = Engine(policy, max_idle=timedelta(milliseconds=100))
    for e, stamp in zip(events[:cut], appended, strict=False):
        original.take(e, stamp)
    journal: dict[str, Any] = {}
    _journal([Step(writes=original.journal_writes())], journal)  # the worker's commit
    restored = Engine(policy, max_idle=timedelta(milliseconds=100))
    for e, stamp in zip(events[:cut], appended, strict=False):
        if isinstance(e, Price):
            restored.take(e, stamp)
    not_prices = {k: v for k, v in journal.items() if not k.startswith('["price"')}
    _restore_into(restored, not_prices, seed)
    rest = list(zip(events[cut:], appended[cut:], strict=False))
    expected = [original.take(e, stamp) for e, stamp in rest] + [original.finish()]
    actual = [restored.take(e, stamp) for e, stamp in rest] + [restored.finish()]
    assert [s.outcome for s in actual] == [s.outcome for s in expected]
    assert _comparable(actual) == _comparable(expected)


def test_an_engine_that_journals_no_prices_still_journals_what_a_price_moved() -> None:
    """The worker's engines: prices are read back from market.prices, not the changelog."""
    e = Engine(load_policy(), journal_prices=False)
    e.take(event(wallet("10", asset="BTC", custody="hot")), T0)
    e.journal_writes()
    e.take(event(price("12000000", asset="BTC", when=T0 + timedelta(minutes=1))), T0)
    kinds = [json.loads(key)[0] for key, _ in e.journal_writes()]
    assert "price" not in kinds
    assert "clock" in kinds  # the price is a moment of the exchange holding BTC
    with_prices = Engine(load_policy())
    with_prices.take(event(wallet("10", asset="BTC", custody="hot")), T0)
    with_prices.take(event(price("12000000", asset="BTC", when=T0 + timedelta(minutes=1))), T0)
    assert "price" in [json.loads(key)[0] for key, _ in with_prices.journal_writes()]
