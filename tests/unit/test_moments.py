"""Each exchange is judged at every moment of its own event time (CONTRACT section 8).

The guarantee, as properties: an exchange's status changes, ids and ``as_of``
included, are a function of its own records and of the price records in
append order (and of the append-time gaps between them). They do not change
with the other exchanges' records, with how the input is cut by the worker's
idle checks, or with the guards that skip rules whose inputs did not change.
And the four incidents of the issue that found the old semantics wanting are
reported whatever the order their exchanges' records come in.
"""

from __future__ import annotations

import io
import json
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.changes import Outcome, StatusChange, Step
from monitor.core.engine import Engine
from monitor.core.output.alerts import cloud_event
from monitor.core.policy import Policy, load_policy, parse_policy
from monitor.core.status import Status
from monitor.replay import run
from tests.unit.builders import (
    T0,
    Doc,
    at,
    event,
    liability,
    line,
    price,
    reserve_fund,
    trade,
    wallet,
)

EXCHANGES = ["a", "b", "c"]
BILLION = 10**9
# a short volume window and wallet age, so windows and staleness move within a test
POLICY = {
    "packs": {
        "jp": {
            "liability_reserve": {"volume_window": "2h"},
            "cold_storage": {"max_wallet_age": "30m"},
        }
    }
}


# -- generating interleaved inputs ------------------------------------------------------


@st.composite
def inputs(draw: st.DrawFn) -> list[tuple[Doc, datetime]]:
    """Records of three exchanges and a price feed, each with its append time.

    Event times run forward per stream with some records late; append times
    strictly increase, with gaps around the idle time that closes a moment.
    """
    count = draw(st.integers(min_value=1, max_value=45))
    clocks = defaultdict(int)  # minutes, per stream
    appended = T0
    records: list[tuple[Doc, datetime]] = []
    for n in range(count):
        stream = draw(st.sampled_from([*EXCHANGES, "prices"]))
        step = draw(st.sampled_from([-4, -1, 0, 0, 1, 2, 5, 20]))
        clocks[stream] = max(0, clocks[stream] + step)
        when = at(minutes=clocks[stream])
        if stream == "prices":
            doc = price(
                draw(st.sampled_from(["9000000", "10000000", "11000000"])),
                asset=draw(st.sampled_from(["BTC", "ETH", "XRP"])),
                when=when,
                event_id=f"p-{n}",
            )
        else:
            kind = draw(
                st.sampled_from(["trade", "hot", "cold", "guarantee", "house", "liability", "fund"])
            )
            doc = _exchange_record(draw, kind, stream, when, f"{stream}-{n}")
        gap = draw(st.sampled_from([0.001, 0.05, 0.1, 0.3, 2.0]))
        appended = appended + timedelta(seconds=gap)
        records.append((doc, appended))
    return records


def _exchange_record(draw: st.DrawFn, kind: str, exchange: str, when: datetime, n: str) -> Doc:
    asset = draw(st.sampled_from(["BTC", "BTC", "ETH", "XRP"]))
    if kind == "trade":
        notional = draw(st.sampled_from([BILLION, 300 * BILLION, 2000 * BILLION]))
        currency = draw(st.sampled_from(["JPY", "JPY", "ETH"]))
        return trade(notional, when=when, exchange=exchange, currency=currency, event_id=n)
    if kind in ("hot", "cold", "guarantee", "house"):
        balance = draw(st.sampled_from(["0", "3", "10", "97"]))
        custody = kind if kind in ("hot", "cold") else draw(st.sampled_from(["hot", "cold"]))
        return wallet(
            balance,
            asset=asset,
            wallet_id=f"{asset}-{kind}",
            custody=custody,
            holder=kind if kind in ("guarantee", "house") else "customer",
            when=when,
            exchange=exchange,
            event_id=n,
        )
    if kind == "liability":
        amount = draw(st.sampled_from(["50", "100", "120"]))
        return liability(amount, asset=asset, when=when, exchange=exchange, event_id=n)
    amount = draw(st.sampled_from([BILLION, 3 * BILLION]))
    return reserve_fund(amount, when=when, exchange=exchange, event_id=n)


def _owner(doc: Doc) -> str:
    return doc.get("exchange", "prices")


def _alone(records: list[tuple[Doc, datetime]], exchange: str) -> list[tuple[Doc, datetime]]:
    """The exchange's own records and the price records, in their order."""
    return [(doc, when) for doc, when in records if _owner(doc) in (exchange, "prices")]


def _interleaved(records: list[Doc], rng: random.Random) -> list[Doc]:
    """The records merged anew: each exchange keeps its order and its place among prices."""
    result: list[Doc] = []
    segment: list[Doc] = []
    for doc in [*records, None]:
        if doc is not None and _owner(doc) != "prices":
            segment.append(doc)
            continue
        keys = sorted(rng.random() for _ in segment)
        per_exchange: dict[str, list[float]] = defaultdict(list)
        for key, held in zip(sorted(keys, key=lambda _: rng.random()), segment, strict=True):
            per_exchange[_owner(held)].append(key)
        ordered = []
        for name, keys_of in per_exchange.items():
            mine = [held for held in segment if _owner(held) == name]
            ordered.extend(zip(sorted(keys_of), mine, strict=True))
        result.extend(held for _, held in sorted(ordered, key=lambda pair: pair[0]))
        segment = []
        if doc is not None:
            result.append(doc)
    return result


# -- running an engine and comparing what each exchange says --------------------------


def _published(changes: list[StatusChange]) -> dict[str, list[str]]:
    """Each exchange's changes as the bytes a subscriber would receive."""
    by_exchange: dict[str, list[str]] = defaultdict(list)
    for change in changes:
        document = cloud_event(change, app_id="test", currency="JPY")
        by_exchange[change.exchange].append(json.dumps(document, sort_keys=True))
    return dict(by_exchange)


def _run(
    policy: Policy,
    records: list[tuple[Doc, datetime | None]],
    *,
    idle_at: set[int] = frozenset(),  # type: ignore[assignment]
    guarded: bool = True,
) -> list[StatusChange]:
    engine = Engine(policy, guarded=guarded)
    changes: list[StatusChange] = []
    previous: datetime | None = None
    for n, (doc, appended) in enumerate(records):
        if n in idle_at and previous is not None and appended is not None:
            # the worker's idle check between two records: append time has gone on
            changes.extend(engine.idle(previous + (appended - previous) / 2).changes)
        changes.extend(engine.take(event(doc), appended).changes)
        previous = appended
    changes.extend(engine.finish().changes)
    return changes


PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(records=inputs(), idle=st.sets(st.integers(min_value=0, max_value=44)))
def test_an_exchange_says_the_same_alone_as_among_others_and_however_idle_checks_cut_it(
    records: list[tuple[Doc, datetime]], idle: set[int]
) -> None:
    policy = parse_policy(POLICY)
    together = _published(_run(policy, list(records), idle_at=idle))
    for exchange in EXCHANGES:
        alone = _published(_run(policy, list(_alone(records, exchange))))
        assert together.get(exchange, []) == alone.get(exchange, [])


@PROPERTY
@given(records=inputs(), seed=st.integers(min_value=0, max_value=2**32))
def test_any_interleaving_of_the_exchanges_gives_each_the_same_changes(
    records: list[tuple[Doc, datetime]], seed: int
) -> None:
    policy = parse_policy(POLICY)
    docs = [doc for doc, _ in records]
    first = _published(_run(policy, [(doc, None) for doc in docs]))
    shuffled = _interleaved(docs, random.Random(seed))
    again = _published(_run(policy, [(doc, None) for doc in shuffled]))
    assert again == first


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(records=inputs())
def test_the_guards_skip_only_rules_whose_answer_cannot_have_changed(
    records: list[tuple[Doc, datetime]],
) -> None:
    policy = parse_policy(POLICY)
    guarded = _published(_run(policy, list(records)))
    every_rule_every_moment = _published(_run(policy, list(records), guarded=False))
    assert guarded == every_rule_every_moment


def test_a_trade_released_by_its_currencys_first_price_runs_the_reserve_rule_again() -> None:
    # found by the guard property: the release happens as the moment before the
    # price closes, after the exchange had already been judged once
    def appended(n: int) -> datetime:
        return T0 + timedelta(milliseconds=n)

    records: list[tuple[Doc, datetime]] = [
        (reserve_fund(BILLION, exchange="b"), appended(1)),
        (trade(BILLION, currency="ETH", exchange="b"), appended(2)),
        (wallet("0", wallet_id="g", custody="hot", holder="guarantee", exchange="b"), appended(3)),
        (price("9000000", when=at(minutes=1)), appended(4)),
        (price("9000000", asset="ETH", when=at(minutes=2)), appended(5)),
    ]
    policy = parse_policy(POLICY)
    guarded = _published(_run(policy, records))
    assert guarded == _published(_run(policy, records, guarded=False))
    reserve = [json.loads(c)["data"] for c in guarded["b"] if "liability_reserve" in c]
    assert [(d["status"], d["as_of"]) for d in reserve] == [("breach", "2024-05-31T13:01:00Z")]


# -- moments, one at a time ----------------------------------------------------------------


def _changes(steps: list[Step]) -> list[tuple[str, str, Status, datetime]]:
    return [(c.exchange, c.rule, c.status, c.as_of) for s in steps for c in s.changes]


def test_a_moment_is_judged_once_the_exchange_has_a_later_record() -> None:
    e = Engine(load_policy())
    assert e.take(event(reserve_fund(BILLION))).changes == []  # the moment T0 is open
    later = e.take(event(trade(BILLION, when=at(minutes=1))))
    assert ("dmm", "jp.liability_reserve", Status.BREACH, T0) in _changes([later])


def test_another_exchanges_records_never_close_a_moment() -> None:
    e = Engine(load_policy())
    e.take(event(reserve_fund(BILLION)))
    others = [e.take(event(trade(BILLION, when=at(hours=h), exchange="bf"))) for h in (1, 2)]
    assert [c for step in others for c in step.changes if c.exchange == "dmm"] == []
    assert ("dmm", "jp.liability_reserve", Status.BREACH, T0) in _changes([e.finish()])


def test_a_quiet_gap_of_append_time_closes_a_moment() -> None:
    e = Engine(load_policy(), max_idle=timedelta(seconds=0.1))
    e.take(event(reserve_fund(BILLION)), appended=T0)
    assert e.idle(T0 + timedelta(seconds=0.05)).changes == []
    judged = e.idle(T0 + timedelta(seconds=0.1))
    assert ("dmm", "jp.liability_reserve", Status.BREACH, T0) in _changes([judged])


def test_the_quiet_gap_runs_from_the_latest_append_even_if_records_come_out_of_order() -> None:
    # the worker reads its input topics side by side: a record appended earlier may
    # be taken after one appended later
    e = Engine(load_policy(), max_idle=timedelta(seconds=0.1))
    e.take(event(reserve_fund(BILLION)), appended=T0 + timedelta(seconds=1))
    e.take(event(reserve_fund(BILLION, exchange="bf")), appended=T0 + timedelta(seconds=1.05))
    e.take(event(trade(BILLION)), appended=T0 + timedelta(seconds=0.5))
    assert e.idle(T0 + timedelta(seconds=1.0625)).changes == []  # quiet only since 1.0 s
    judged = e.idle(T0 + timedelta(seconds=1.125))  # dmm's 0.1 s, not yet bf's
    assert _changes([judged]) == [("dmm", "jp.liability_reserve", Status.BREACH, T0)]


def test_a_late_snapshot_reopens_the_newest_moment_and_is_named_in_the_evidence() -> None:
    e = Engine(load_policy())
    for doc in [
        price("10000000", when=T0),
        reserve_fund(3 * BILLION),
        wallet("97", when=at(minutes=10)),
        wallet("3", wallet_id="btc-hot-1", custody="hot", when=at(minutes=10)),
    ]:
        e.take(event(doc))
    e.finish()
    assert e.exchanges["dmm"].rules["jp.cold_storage"].status is Status.OK
    # a chain watcher's balance as of an older block: another hot wallet, 97/101.5 cold
    late = wallet("1.5", wallet_id="btc-hot-2", custody="hot", when=at(minutes=9))
    assert e.take(event(late)).outcome is Outcome.APPLIED
    (change,) = [c for c in e.finish().changes if c.rule == "jp.cold_storage"]
    assert change.status is Status.WARNING
    assert change.as_of == at(minutes=10)  # the moment it re-opened, not the record's own
    assert change.assessment.evidence["late_records"] == [
        {"record": "wallet_balance", "key": "btc-hot-2/BTC", "ts": "2024-05-31T13:09:00Z"}
    ]
    # a snapshot older than the one held for its wallet is stale and re-opens nothing
    older = wallet("50", wallet_id="btc-hot-2", custody="hot", when=at(minutes=8))
    assert e.take(event(older)).outcome is Outcome.STALE
    assert e.finish().evaluated == []


def test_a_new_breach_is_held_for_breach_for_and_dropped_if_it_recovers_within_it() -> None:
    e = Engine(load_policy())  # jp.segregation holds a breach for 5 minutes
    base = [price("10000000"), wallet("110"), liability("100"), reserve_fund(3 * BILLION)]
    for doc in base:
        e.take(event(doc))
    short = [liability("120", when=at(minutes=m)) for m in (1, 2, 3)]
    steps = [e.take(event(doc)) for doc in short]
    steps.append(e.take(event(liability("100", when=at(minutes=4)))))  # recovered in time
    steps.append(e.finish())
    segregation = [c for s in steps for c in s.changes if c.rule == "jp.segregation"]
    assert [c.status for c in segregation] == [Status.OK]  # the first judgment, no breach
    # short for longer than the hold: published at the first moment 5 minutes on
    long = [liability("120", when=at(minutes=m)) for m in (5, 7, 9, 10, 11)]
    steps = [e.take(event(doc)) for doc in long] + [e.finish()]
    published = [c for s in steps for c in s.changes if c.rule == "jp.segregation"]
    assert [(c.status, c.as_of) for c in published] == [(Status.BREACH, at(minutes=10))]
    assert published[0].assessment.evidence["breach_since"] == "2024-05-31T13:05:00Z"


def test_the_drain_rule_fires_at_once() -> None:
    e = Engine(load_policy())
    for doc in [
        price("10000000"),
        wallet("10", wallet_id="btc-hot-1", custody="hot"),
        wallet("0", wallet_id="btc-hot-1", custody="hot", when=at(seconds=2)),
    ]:
        e.take(event(doc))
    drain = [c for c in e.finish().changes if c.rule == "ops.hot_wallet_drain"]
    assert [(c.status, c.as_of) for c in drain] == [(Status.BREACH, at(seconds=2))]


def test_an_exchange_is_valued_at_the_price_in_force_at_its_moment() -> None:
    e = Engine(load_policy())
    e.take(event(price("10000000", when=T0)))
    e.take(event(price("20000000", when=at(hours=1))))  # the feed is ahead of the exchange
    e.take(event(wallet("3", wallet_id="btc-hot-1", custody="hot", when=at(minutes=5))))
    e.finish()
    state = e.exchanges["dmm"]
    assert state.holdings.hot_value() == 3 * 10_000_000
    e.take(event(trade(BILLION, when=at(hours=1, minutes=1))))  # its time reaches the new price
    e.finish()
    assert state.holdings.hot_value() == 3 * 20_000_000


# -- the four incidents, in any order ------------------------------------------------------

MINUTES = 60
INCIDENTS = {
    "theft": "ops.hot_wallet_drain",
    "short": "jp.segregation",
    "underfunded": "jp.liability_reserve",
    "hot-heavy": "jp.cold_storage",
}


def _incident(exchange: str) -> list[Doc]:
    """An hour of one healthy exchange reporting every minute, with one incident in it.

    The incidents: a deposit followed two seconds later by a theft that empties
    the hot wallet; customer wallets short of liabilities for ten minutes; the
    reserve fund under its floor for ten minutes; the cold share under 95% for
    ten minutes.
    """
    docs: list[Doc] = [reserve_fund(5 * BILLION, exchange=exchange)]
    for m in range(MINUTES):
        when = at(minutes=m)
        during = 20 <= m < 30
        cold, hot, owed = "97", "3", "95"
        if exchange == "hot-heavy" and during:
            cold, hot = "90", "10"
        if exchange == "short" and during:
            owed = "110"
        if exchange == "underfunded" and m in (20, 30):
            docs.append(
                reserve_fund((BILLION if m == 20 else 5 * BILLION), exchange=exchange, when=when)
            )
        if exchange == "theft" and m >= 30:
            hot = "0"
        if exchange == "theft" and m == 30:
            deposit = wallet("13", wallet_id="btc-hot", custody="hot", when=when, exchange=exchange)
            docs.append(deposit)
            when = when + timedelta(seconds=2)
        docs += [
            wallet(cold, wallet_id="btc-cold", when=when, exchange=exchange),
            wallet(hot, wallet_id="btc-hot", custody="hot", when=when, exchange=exchange),
            wallet(
                "3", wallet_id="btc-guarantee", holder="guarantee", when=when, exchange=exchange
            ),
            liability(owed, when=when, exchange=exchange),
            trade(BILLION, when=when, exchange=exchange),
        ]
    return docs


def _prices() -> list[Doc]:
    return [price("10000000", when=at(minutes=m), event_id=f"btc-{m}") for m in range(MINUTES)]


def _with_prices(docs: list[Doc]) -> list[Doc]:
    """An exchange's records with the price feed, merged by event time as it was appended."""
    prices = _prices()
    merged = sorted(
        [(event(d).ts, 0, n, d) for n, d in enumerate(prices)]
        + [(event(d).ts, 1, n, d) for n, d in enumerate(docs)],
        key=lambda item: item[:3],
    )
    return [d for *_, d in merged]


def _replayed(docs: list[Doc]) -> dict[str, list[tuple[str, Status, Status]]]:
    engine = Engine(load_policy())
    found: dict[str, list[tuple[str, Status, Status]]] = defaultdict(list)
    steps = [engine.take(event(doc)) for doc in docs] + [engine.finish()]
    for step in steps:
        for c in step.changes:
            found[c.exchange].append((c.rule, c.previous, c.status))
    return found


def _assert_reported(found: dict[str, list[tuple[str, Status, Status]]]) -> None:
    for exchange, rule in INCIDENTS.items():
        statuses = [status for r, _, status in found[exchange] if r == rule]
        # judged ok first, then the incident: the history does not start in breach
        assert statuses[:2] == [Status.OK, Status.BREACH], (exchange, rule, statuses)


def test_each_incident_is_reported_replayed_alone() -> None:
    found = {x: _replayed(_with_prices(_incident(x)))[x] for x in INCIDENTS}
    _assert_reported(found)


def test_each_incident_is_reported_with_the_exchanges_concatenated_either_way() -> None:
    files = [_with_prices(_incident(exchange)) for exchange in INCIDENTS]
    forward = [doc for docs in files for doc in docs]
    backward = [doc for docs in reversed(files) for doc in docs]
    alone = {x: _replayed(_with_prices(_incident(x)))[x] for x in INCIDENTS}
    for order in (forward, backward):
        found = _replayed(order)
        _assert_reported(found)
        assert dict(found) == alone


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_each_incident_is_reported_however_the_exchanges_interleave(seed: int) -> None:
    everything = _with_prices([doc for x in INCIDENTS for doc in _incident(x)])
    found = _replayed(_interleaved(everything, random.Random(seed)))
    _assert_reported(found)


def test_replay_of_several_files_merges_them_by_record_timestamp(tmp_path: Any) -> None:
    paths = []
    for exchange in INCIDENTS:
        path = tmp_path / f"{exchange}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for n, doc in enumerate(_with_prices(_incident(exchange))):
                record = json.loads(line(doc))
                record["timestamp"] = (event(doc).ts + timedelta(microseconds=n)).isoformat()
                out.write(json.dumps(record) + "\n")
        paths.append(str(path))
    out, err = io.StringIO(), io.StringIO()
    assert run(paths, load_policy(), out, err, "test") == 0
    found: dict[str, list[tuple[str, Status, Status]]] = defaultdict(list)
    for text in out.getvalue().splitlines():
        data = json.loads(text)["data"]
        found[data["exchange"]].append(
            (data["rule"], Status(data["previous_status"]), Status(data["status"]))
        )
    _assert_reported(found)
