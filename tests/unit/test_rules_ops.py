"""ops.hot_wallet_drain: a fast fall of hot-wallet value, its window, and the DMM story.

The peak of the hot-wallet value over the window is kept in a monotonic deque
(:class:`~monitor.core.state.peaks.PeakWindow`); the property tests hold it against
a brute-force maximum over every value the exchange had, under random,
out-of-order and repeated snapshots and prices.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.engine import Engine, Outcome, Step
from monitor.core.errors import PolicyError
from monitor.core.events import Topic, decode_document
from monitor.core.money import MONEY_CONTEXT
from monitor.core.policy import load_policy, parse_policy
from monitor.core.state.peaks import PeakWindow
from monitor.core.status import Status
from monitor.synthetic.scenarios import generate, phases
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

RULE = "ops.hot_wallet_drain"
D = Decimal
HOUR = timedelta(hours=1)


def hot(balance: str, *, when: datetime = T0, wallet_id: str = "btc-hot-1", **fields: Any) -> Doc:
    return wallet(balance, wallet_id=wallet_id, custody="hot", when=when, **fields)


def transitions(steps: Any) -> list[tuple[Status, Status]]:
    return [(c.previous, c.status) for c in changes(steps) if c.rule == RULE]


def measured(e: Engine, exchange: str = EXCHANGE) -> Any:
    return assessment_of(e, RULE, exchange)


@pytest.mark.parametrize(
    ("after", "status"),
    [
        ("90.01", Status.OK),
        ("90", Status.OK),  # a fall of exactly 10%: at the early-warning line, not under it
        ("89.99", Status.WARNING),
        ("80", Status.WARNING),  # a fall of exactly 20% is allowed ("not more than")
        ("79.99", Status.BREACH),
        ("0", Status.BREACH),
    ],
)
def test_the_drop_boundaries(after: str, status: Status) -> None:
    e = instant_engine(load_policy())
    feed(e, price("1000"), hot("100"))
    assert status_of(e, RULE) is Status.OK
    feed(e, hot(after, when=at(minutes=10)))
    assert status_of(e, RULE) is status
    a = measured(e)
    assert a.ratio == D(after) / 100
    assert a.required == D("80000")  # 80% of the 100,000 peak
    assert a.available == D(after) * 1000
    assert a.shortfall == max(D(0), D("80000") - D(after) * 1000)


def test_every_holder_in_hot_wallets_counts_and_cold_does_not() -> None:
    e = instant_engine(load_policy())
    feed(
        e,
        price("1"),
        hot("50", wallet_id="c", holder="customer"),
        hot("30", wallet_id="g", holder="guarantee"),
        hot("20", wallet_id="h", holder="house"),
        wallet("1000", wallet_id="cold"),
    )
    feed(e, hot("0", wallet_id="h", holder="house", when=at(minutes=1)))
    assert measured(e).ratio == D("0.8")
    feed(e, wallet("0", wallet_id="cold", when=at(minutes=2)))  # cold moves are not a drain
    assert measured(e).ratio == D("0.8")
    assert status_of(e, RULE) is Status.WARNING


def test_a_drop_fires_at_once_and_leaves_the_window_after_it() -> None:
    e = instant_engine(load_policy())
    steps = feed(e, price("1000"), hot("100"))
    steps += feed(e, hot("30", when=at(minutes=5)))
    assert status_of(e, RULE) is Status.BREACH
    steps += feed(e, hot("100", when=at(minutes=6)))  # a top-up does not clear it
    assert status_of(e, RULE) is Status.OK  # ...unless it restores the peak itself
    steps += feed(e, hot("30", when=at(minutes=7)))
    steps += feed(e, hot("35", when=at(minutes=8)), price("1000", when=at(minutes=30)))
    assert status_of(e, RULE) is Status.BREACH
    steps.append(moment(e, at(minutes=7) + HOUR))  # exactly one window after the fall
    assert status_of(e, RULE) is Status.BREACH
    steps.append(moment(e, at(minutes=7) + HOUR + timedelta(microseconds=1)))
    assert status_of(e, RULE) is Status.OK
    assert measured(e).ratio == 1
    assert transitions(steps)[:4] == [
        (Status.UNKNOWN, Status.OK),
        (Status.OK, Status.BREACH),
        (Status.BREACH, Status.OK),
        (Status.OK, Status.BREACH),
    ]


def test_a_value_held_for_hours_is_the_peak_a_sudden_drain_is_measured_against() -> None:
    # A wallet that does not move is not re-reported; its value still held until the fall.
    e = instant_engine(load_policy())
    feed(e, price("1000"), hot("100"))
    for hour in range(1, 5):  # prices and other feeds keep everything fresh
        feed(
            e, price("1000", when=at(hours=hour)), hot("1", wallet_id="other", when=at(hours=hour))
        )
    feed(e, hot("20", when=at(hours=4, minutes=30)))
    assert status_of(e, RULE) is Status.BREACH
    assert measured(e).evidence["peak_hot_value"] == "101000"


def test_a_slow_decline_within_the_window_counts_as_a_whole() -> None:
    e = instant_engine(load_policy())
    steps = feed(e, price("1"), hot("100"))
    for n, balance in enumerate(["95", "90", "85", "79"], start=1):
        steps += feed(e, hot(balance, when=at(minutes=12 * n)))
    assert transitions(steps) == [
        (Status.UNKNOWN, Status.OK),
        (Status.OK, Status.WARNING),  # 85: 15% under the peak
        (Status.WARNING, Status.BREACH),  # 79: 21% within 48 min
    ]


def test_the_same_decline_spread_over_more_than_the_window_is_ordinary() -> None:
    e = instant_engine(load_policy())
    steps = feed(e, price("1"), hot("100"))
    balance = D(100)
    # 3% every 25 minutes: an hour sees the value held before three such steps (8.7%)
    for n in range(1, 13):
        balance = balance * D("0.97")
        when = at(minutes=25 * n)
        steps += feed(e, price("1", when=when), hot(str(balance), when=when))
    assert transitions(steps) == [(Status.UNKNOWN, Status.OK)]
    assert measured(e).ratio == MONEY_CONTEXT.divide(balance, balance / D("0.97") ** 3)


def test_a_price_fall_counts_too_and_the_evidence_shows_no_wallet_fell() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1000"), hot("100"))
    feed(e, price("750", when=at(minutes=30)))
    assert status_of(e, RULE) is Status.BREACH
    assert measured(e).evidence["hot_wallet_falls"] == []
    assert "prices moved" in measured(e).reason


def test_the_evidence_names_the_wallets_that_fell() -> None:
    e = instant_engine(load_policy())
    feed(e, price("10000000"), hot("5400"), hot("100", wallet_id="btc-hot-2"))
    feed(e, hot("897.1", when=at(minutes=1)))
    a = measured(e)
    assert status_of(e, RULE) is Status.BREACH
    (fall,) = a.evidence["hot_wallet_falls"]
    assert fall["wallet"] == "btc-hot-1"
    assert (fall["before"], fall["after"]) == ("5400", "897.1")
    assert fall["value"] == "45029000000"
    assert a.evidence["drop_value"] == "45029000000"
    assert "btc-hot-1 BTC 5400 → 897.1" in a.reason
    assert "stop withdrawals" in a.reason


def test_evidence_keeps_the_largest_falls_within_the_window() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), hot("1000"), *[hot("100", wallet_id=f"w{n}") for n in range(6)])
    feed(e, hot("1", when=at(minutes=1)))  # the large one first
    for n in range(6):  # then six small ones
        feed(e, hot("99", wallet_id=f"w{n}", when=at(minutes=2 + n)))
    falls = measured(e).evidence["hot_wallet_falls"]
    assert len(falls) == 5
    assert falls[0]["wallet"] == "btc-hot-1"


def test_hysteresis_after_a_breach() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), hot("100"))
    feed(e, hot("70", when=at(minutes=1)))
    assert status_of(e, RULE) is Status.BREACH
    feed(e, hot("81", when=at(minutes=2)))  # 0.81: over 0.8, not by 0.02
    assert status_of(e, RULE) is Status.BREACH
    feed(e, hot("82", when=at(minutes=3)))
    assert status_of(e, RULE) is Status.WARNING
    feed(e, hot("91", when=at(minutes=4)))  # over 0.9, not by 0.02
    assert status_of(e, RULE) is Status.WARNING
    feed(e, hot("92", when=at(minutes=5)))
    assert status_of(e, RULE) is Status.OK


def test_unknown_without_wallets_with_stale_wallets_unpriced_or_stale_prices() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"))
    assert EXCHANGE not in e.exchanges
    feed(e, wallet("1", wallet_id="x", asset="ETH"))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert measured(e).evidence["unpriced"] == ["ETH"]
    feed(e, price("1", asset="ETH"), hot("100"))
    assert status_of(e, RULE) is Status.OK
    moment(e, at(hours=1, microseconds=1))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "wallet_balances" in measured(e).reason
    feed(e, hot("100", when=at(hours=2)))
    assert status_of(e, RULE) is Status.UNKNOWN
    assert "prices" in measured(e).reason


def test_no_hot_value_is_no_drain() -> None:
    e = instant_engine(load_policy())
    feed(e, price("1"), wallet("100", wallet_id="cold"))
    assert status_of(e, RULE) is Status.OK
    assert measured(e).ratio == 1
    assert "Nothing" in measured(e).reason


def test_window_and_shares_per_exchange() -> None:
    policy = parse_policy(
        {
            "exchanges": {
                "default": {"packs": ["ops"]},
                "careful": {
                    "packs": ["ops"],
                    "params": {
                        "ops": {
                            "hot_wallet_drain": {
                                "window": "3h",
                                "max_drop_share": "0.1",
                                "warning_drop_share": "0.05",
                            }
                        }
                    },
                },
            }
        }
    )
    e = instant_engine(policy)
    for exchange in (EXCHANGE, "careful"):
        feed(e, price("1"), hot("100", exchange=exchange))
        feed(e, hot("88", exchange=exchange, when=at(minutes=1)))
    assert status_of(e, RULE) is Status.WARNING
    assert status_of(e, RULE, "careful") is Status.BREACH
    for exchange in (EXCHANGE, "careful"):  # two hours later, the fall is out of 1h, not of 3h
        feed(e, price("1", when=at(hours=2)), hot("88", exchange=exchange, when=at(hours=2)))
    assert status_of(e, RULE) is Status.OK
    assert status_of(e, RULE, "careful") is Status.BREACH


def test_ops_parameters_are_validated() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            {
                "packs": {
                    "ops": {
                        "hot_wallet_drain": {"max_drop_share": "0.1", "warning_drop_share": "0.2"}
                    }
                }
            }
        )
    (problem,) = caught.value.problems
    assert problem.startswith("packs.ops.hot_wallet_drain: ")
    assert "warning_drop_share" in problem
    with pytest.raises(PolicyError, match="max_drop_share"):
        parse_policy({"packs": {"ops": {"hot_wallet_drain": {"max_drop_share": "1"}}}})


# -- restart ----------------------------------------------------------------------------


def _journal(steps: list[Step], journal: dict[str, Any]) -> None:
    for step in steps:
        for key, document in step.writes:
            if document is None:
                journal.pop(key, None)
            else:
                journal[key] = document


def test_a_restored_engine_keeps_the_peak_and_the_falls() -> None:
    original = instant_engine(load_policy())
    journal: dict[str, Any] = {}
    _journal(feed(original, price("1000"), hot("100"), hot("20", when=at(minutes=5))), journal)
    _journal(feed(original, hot("25", when=at(minutes=6))), journal)
    restored = instant_engine(load_policy())
    for key, document in reversed(list(journal.items())):  # any order
        restored.restore(key, document)
    assert status_of(restored, RULE) is Status.BREACH
    later = [hot("26", when=at(minutes=7)), price("1000", when=at(minutes=30))]
    ahead = [
        (c.previous, c.status, c.assessment.ratio, c.assessment.evidence)
        for c in changes(feed(original, *later))
    ]
    again = [
        (c.previous, c.status, c.assessment.ratio, c.assessment.evidence)
        for c in changes(feed(restored, *later))
    ]
    assert ahead == again
    assert measured(restored) == measured(original)
    levels = []
    for engine in (original, restored):
        peaks = engine.exchanges[EXCHANGE].hot_peaks
        assert peaks is not None
        levels.append([(lv.start, lv.value, lv.end) for lv in peaks.levels()])
    assert levels[0] == levels[1]
    assert engine.exchanges[EXCHANGE].hot_falls == original.exchanges[EXCHANGE].hot_falls


liability_docs = st.builds(
    lambda amount, a, m: liability(amount, asset=a, when=at(minutes=m)),
    st.sampled_from(["0", "5", "50"]),
    st.sampled_from(["BTC", "ETH"]),
    st.integers(min_value=0, max_value=150),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(
        st.one_of(
            st.builds(
                lambda b, w, c, m: wallet(b, wallet_id=w, custody=c, when=at(minutes=m)),
                st.sampled_from(["0", "3", "10", "100"]),
                st.sampled_from(["w1", "w2"]),
                st.sampled_from(["hot", "hot", "cold"]),
                st.integers(min_value=0, max_value=150),
            ),
            st.builds(
                lambda p, m: price(p, when=at(minutes=m)),
                st.sampled_from(["1", "2", "9"]),
                st.integers(min_value=0, max_value=150),
            ),
            liability_docs,
        ),
        min_size=1,
        max_size=30,
    ),
    after=st.lists(
        st.builds(
            lambda b, w, m: wallet(b, wallet_id=w, custody="hot", when=at(minutes=150 + m)),
            st.sampled_from(["0", "3", "10", "100"]),
            st.sampled_from(["w1", "w2"]),
            st.integers(min_value=1, max_value=120),
        ),
        max_size=10,
    ),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_restore_in_any_order_gives_the_same_drain_and_coverage_future(
    before: list[Doc], after: list[Doc], seed: int
) -> None:
    original = instant_engine(load_policy())
    journal: dict[str, Any] = {}
    _journal(feed(original, *before), journal)
    entries = list(journal.items())
    random.Random(seed).shuffle(entries)
    restored = instant_engine(load_policy())
    for key, document in entries:
        restored.restore(key, document)
    # every exchange hears once more after the restart, then the same future
    assert original.clock is not None
    wake = [
        price("1", asset="XRP", when=original.clock),
        wallet("1", wallet_id="wake", when=original.clock),
    ]
    rules = {RULE, "jp.hot_wallet_guarantee", "jp.segregation"}

    def future(e: Engine) -> list[Any]:
        return [
            (c.rule, c.previous, c.status, c.sequence, c.as_of, c.assessment)
            for c in changes(feed(e, *wake, *after))
            if c.rule in rules
        ]

    assert future(restored) == future(original)
    for rule in rules:
        assert assessment_of(restored, rule) == assessment_of(original, rule)


# -- the incremental window against brute force ------------------------------------------


def _brute_peak(
    samples: list[tuple[datetime, Decimal]], now: datetime, window: timedelta
) -> Decimal:
    """The largest value held at any time in [now - window, now]; each holds until the next."""
    horizon = now - window
    held = [
        value
        for n, (_start, value) in enumerate(samples)
        if n + 1 == len(samples) or samples[n + 1][0] >= horizon
    ]
    return max(held)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40),  # minutes since the previous sample
            st.sampled_from([D(0), D(1), D(5), D("7.5"), D(10), D(100)]),
            st.integers(min_value=0, max_value=90),  # minutes to look ahead for a query
        ),
        min_size=1,
        max_size=60,
    ),
    window_minutes=st.sampled_from([1, 30, 60]),
)
def test_the_peak_window_equals_the_brute_force_maximum(
    steps: list[tuple[int, Decimal, int]], window_minutes: int
) -> None:
    window = timedelta(minutes=window_minutes)
    peaks = PeakWindow(window)
    samples: list[tuple[datetime, Decimal]] = []
    now = T0
    for gap, value, ahead in steps:
        now += timedelta(minutes=gap)
        peaks.observe(now, value)
        samples.append((now, value))
        level = peaks.peak()
        assert level is not None and level.value == _brute_peak(samples, now, window)
        values = [lv.value for lv in peaks.levels()]
        assert values == sorted(set(values), reverse=True)  # strictly falling
        query = now + timedelta(minutes=ahead)
        probe = PeakWindow(window)
        for held in peaks.levels():
            probe.restore(held)
        probe.advance(query)
        assert probe.peak() is not None
        assert probe.peak().value == _brute_peak(samples, query, window)  # type: ignore[union-attr]


ASSETS = ["BTC", "ETH"]
WALLETS = ["w1", "w2", "w3"]
minutes = st.integers(min_value=0, max_value=150)
documents = st.one_of(
    st.builds(
        lambda b, a, w, c, h, m: wallet(
            b, asset=a, wallet_id=w, custody=c, holder=h, when=at(minutes=m)
        ),
        st.sampled_from(["0", "1", "4", "10", "25.5", "100"]),
        st.sampled_from(ASSETS),
        st.sampled_from(WALLETS),
        st.sampled_from(["hot", "hot", "cold"]),
        st.sampled_from(["customer", "guarantee", "house"]),
        minutes,
    ),
    st.builds(
        lambda p, a, m: price(p, asset=a, when=at(minutes=m)),
        st.sampled_from(["1", "2", "3", "10"]),
        st.sampled_from(ASSETS),
        minutes,
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(documents, min_size=1, max_size=60), repeats=st.lists(st.integers(0, 59)))
def test_the_engines_hot_value_and_peak_equal_brute_force_under_out_of_order_events(
    history: list[Doc], repeats: list[int]
) -> None:
    docs = history + [dict(history[i]) for i in repeats if i < len(history)]
    e = instant_engine(load_policy())
    window = HOUR
    seen: set[str] = set()
    snapshots: dict[tuple[str, str], Doc] = {}
    prices: dict[str, list[Doc]] = {}  # each asset's prices taken, oldest first
    samples: list[tuple[datetime, Decimal]] = []
    for doc in docs:
        step = e.apply(event(doc))
        # brute force: newest ts wins per wallet slot, first arrival on ties, repeated ids
        # ignored; a price is taken when it is newer than every price of its asset
        if "price" in doc:
            taken = prices.setdefault(doc["asset"], [])
            if not taken or event(doc).ts > event(taken[-1]).ts:
                taken.append(doc)
        elif doc["event_id"] not in seen:
            key = (doc["wallet"], doc["asset"])
            held = snapshots.get(key)
            if held is None or event(doc).ts > event(held).ts:
                snapshots[key] = doc
            seen.add(doc["event_id"])
        if step.outcome is not Outcome.APPLIED or EXCHANGE not in step.evaluated:
            continue
        state = e.exchanges[EXCHANGE]
        clock = state.clock
        assert clock is not None

        def in_force(asset: str, clock: datetime = clock) -> Decimal | None:
            """The newest price taken that is dated at or before the exchange's clock."""
            dated = [p for p in prices.get(asset, []) if event(p).ts <= clock]
            return D(dated[-1]["price"]) if dated else None

        value = D(0)
        for w in snapshots.values():
            unit = in_force(w["asset"])
            if w["custody"] == "hot" and unit is not None:
                value += D(w["balance"]) * unit
        assert state.holdings.hot_value() == value
        samples.append((clock, value))
        peaks = state.hot_peaks
        assert peaks is not None
        level = peaks.peak()
        assert level is not None and level.value == _brute_peak(samples, clock, window)


# -- the DMM story (monitor.synthetic.scenarios, no Kafka) ---------------------------------------


def _run(scenario: str, policy: Any, **params: Any) -> tuple[Engine, list[Any], Any]:
    start = datetime(2024, 5, 31, 13, 0, tzinfo=T0.tzinfo)
    records = generate(scenario, start, 1, **params)
    e = instant_engine(policy)
    found = []
    for record in records:
        step = e.apply(decode_document(Topic(record.topic), record.key, record.value))
        assert step.outcome is Outcome.APPLIED, (record, step)
        found.extend(step.changes)
    return e, found, phases(scenario, start, 1, **params)


def test_the_dmm_incident_tells_its_story() -> None:
    e, found, story = _run("dmm-incident", load_policy())
    by_phase: dict[int, list[tuple[str, Status]]] = {}
    for change in found:
        number = max(p.number for p in story if p.starts <= change.as_of)
        if change.exchange == "dmm" and change.previous is not Status.UNKNOWN:
            by_phase.setdefault(number, []).append((change.rule, change.status))
    assert by_phase == {
        2: [("jp.liability_reserve", Status.BREACH)],
        3: [("jp.cold_storage", Status.BREACH)],
        4: [
            ("jp.cold_storage", Status.OK),
            ("jp.segregation", Status.BREACH),
            ("ops.hot_wallet_drain", Status.BREACH),
        ],
        5: [("jp.liability_reserve", Status.OK), ("jp.segregation", Status.OK)],
        6: [("ops.hot_wallet_drain", Status.OK)],
    }
    drain = next(c for c in found if c.rule == RULE and c.status is Status.BREACH)
    assert drain.assessment.evidence["hot_wallet_falls"][0]["wallet"] == "btc-hot-1"
    segregation = next(c for c in found if c.rule == "jp.segregation" and c.status is Status.BREACH)
    assert segregation.assessment.evidence["short_assets"]["BTC"]["short"] == "4302.9"
    # the healthy peer never leaves ok, and every rule of both ends ok
    assert Counter(c.status for c in found if c.exchange == "calm") == Counter({Status.OK: 5})
    for exchange in ("dmm", "calm"):
        assert {r.status for r in e.exchanges[exchange].rules.values()} == {Status.OK}
