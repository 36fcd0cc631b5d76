"""Risk ahead: insurance that ends within the horizon and would leave a breach warns first.

Every rule that counts insurance shares :mod:`monitor.core.rules.insurance`; the
boundaries are tested on ``jp.liability_reserve`` (floor 2 bn, insurance counted up
to half of it, a 30-day horizon by default), and each of ``hk.compensation_cover``
and ``eu.mica_own_funds`` once with its own terms.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from monitor.core.engine import Engine
from monitor.core.policy import load_policy, parse_policy
from monitor.core.status import Status
from monitor.replay import replay
from tests.unit.builders import (
    T0,
    Doc,
    assessment_of,
    at,
    changes,
    feed,
    fixed_overheads,
    instant_engine,
    insurance,
    line,
    moment,
    own_funds,
    price,
    reserve_fund,
    status_of,
    wallet,
)

JP = "jp.liability_reserve"
BILLION = 10**9
HORIZON = timedelta(days=30)
YEAR = timedelta(days=365)


def jp_engine(**params: Any) -> Engine:
    if not params:
        return instant_engine(load_policy())
    return instant_engine(parse_policy({"packs": {"jp": {"liability_reserve": params}}}))


def cover(ends: datetime, coverage: int = BILLION, policy_id: str = "tokio-2026", **kw: Any) -> Doc:
    """A policy in force since well before ``T0``, ending at ``ends``."""
    return insurance(coverage, valid_from=ends - YEAR, valid_to=ends, policy_id=policy_id, **kw)


def ahead(e: Engine, rule: str = JP) -> dict[str, Any]:
    document: dict[str, Any] = assessment_of(e, rule).evidence["insurance_ahead"]
    return document


# -- the horizon's edge -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ends", "status"),
    [
        (T0 + HORIZON - timedelta(seconds=1), Status.WARNING),  # just inside
        (T0 + HORIZON, Status.WARNING),  # exactly at the horizon: within it
        (T0 + HORIZON + timedelta(seconds=1), Status.OK),  # just outside
    ],
)
def test_a_policy_whose_end_would_breach_warns_from_the_horizon_on(
    ends: datetime, status: Status
) -> None:
    # fund 1.5 bn + insurance 1 bn = 125% of the 2 bn floor: ok by its ratio;
    # without the insurance 75%: a breach
    e = jp_engine()
    feed(e, reserve_fund(1_500_000_000), cover(ends))
    assert status_of(e, JP) is status
    assert assessment_of(e, JP).ratio == 1.25
    if status is Status.OK:
        assert ahead(e) == {"horizon": "30d", "ending": {}}
        assert "tokio-2026" not in assessment_of(e, JP).reason
        # time brings the end within the horizon, and the warning with it
        moment(e, ends - HORIZON)
        assert status_of(e, JP) is Status.WARNING


def test_the_warning_names_the_policy_its_end_and_the_shortfall_it_would_leave() -> None:
    e = jp_engine()
    steps = feed(e, reserve_fund(1_500_000_000), cover(at(days=10)))
    a = assessment_of(e, JP)
    assert [(c.previous, c.status) for c in changes(steps)] == [
        (Status.UNKNOWN, Status.BREACH),  # the fund alone, before the insurance arrived
        (Status.BREACH, Status.WARNING),
    ]
    assert "Insurance tokio-2026 ends at 2024-06-10T13:00:00Z, within the 30d horizon" in a.reason
    assert "1,500,000,000 JPY will then stand against the 2,000,000,000 JPY required" in a.reason
    assert "add 500,000,000 JPY before then" in a.reason
    assert ahead(e) == {
        "horizon": "30d",
        "ending": {"tokio-2026": "2024-06-10T13:00:00Z"},
        "judged_at": "2024-06-10T13:00:00Z",
        "ended": ["tokio-2026"],
        "insurance": "0",
        "available": "1500000000",
        "ratio": "0.75",
        "shortfall": "500000000",
        "leaves_breach": True,
    }
    # the measurement itself is untouched: the warning is about what comes
    assert (a.required, a.available, a.shortfall) == (2 * BILLION, 2_500_000_000, 0)


def test_an_end_that_would_not_breach_does_not_warn() -> None:
    # fund 2.1 bn: without the insurance 105%, under the 120% early warning but no breach
    e = jp_engine()
    feed(e, reserve_fund(2_100_000_000), cover(at(days=10)))
    assert status_of(e, JP) is Status.OK
    assert ahead(e)["leaves_breach"] is False
    assert ahead(e)["ratio"] == "1.05"
    assert "tokio-2026" not in assessment_of(e, JP).reason


def test_insurance_above_the_cap_ends_without_harm_while_the_rest_fills_the_cap() -> None:
    # 2 bn of insurance counts only 1 bn (half the floor); the 1 bn left after one
    # policy ends still fills the cap
    e = jp_engine()
    feed(
        e,
        reserve_fund(1_500_000_000),
        cover(at(days=10), policy_id="a"),
        cover(at(days=300), policy_id="b"),
    )
    assert status_of(e, JP) is Status.OK
    assert ahead(e)["insurance"] == "1000000000"


def test_of_two_policies_only_the_one_that_ends_is_named() -> None:
    e = jp_engine()
    feed(
        e,
        reserve_fund(1_500_000_000),
        cover(at(days=10), 700_000_000, policy_id="ends-soon"),
        cover(at(days=300), 300_000_000, policy_id="runs-on"),
    )
    assert status_of(e, JP) is Status.WARNING
    assert ahead(e)["ending"] == {"ends-soon": "2024-06-10T13:00:00Z"}
    assert ahead(e)["ended"] == ["ends-soon"]
    assert ahead(e)["insurance"] == "300000000"  # runs-on still counts then
    assert ahead(e)["shortfall"] == "200000000"
    reason = assessment_of(e, JP).reason
    assert "Insurance ends-soon ends at" in reason
    assert "runs-on" not in reason


def test_the_first_end_that_would_breach_is_the_one_told() -> None:
    # a ends first, and b alone still fills the floor; c's end then leaves a breach
    e = jp_engine()
    feed(
        e,
        reserve_fund(1_500_000_000),
        cover(at(days=5), 600_000_000, policy_id="a"),
        cover(at(days=20), 500_000_000, policy_id="b"),
    )
    assert status_of(e, JP) is Status.WARNING
    assert ahead(e)["ending"] == {"a": "2024-06-05T13:00:00Z", "b": "2024-06-20T13:00:00Z"}
    assert ahead(e)["judged_at"] == "2024-06-20T13:00:00Z"
    assert ahead(e)["ended"] == ["b"]
    assert ahead(e)["available"] == "1500000000"


# -- renewal --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "renewal",
    [
        # the same policy, stated again with a later end
        insurance(
            BILLION,
            valid_from=at(days=10) - YEAR,
            valid_to=at(days=375),
            when=at(minutes=1),
        ),
        # a new policy in force from the moment the old one ends
        insurance(
            BILLION,
            valid_from=at(days=10),
            valid_to=at(days=375),
            policy_id="tokio-2027",
            when=at(minutes=1),
        ),
    ],
    ids=["extended", "successor"],
)
def test_a_renewal_clears_the_warning(renewal: Doc) -> None:
    e = jp_engine()
    feed(e, reserve_fund(1_500_000_000), cover(at(days=10)))
    assert status_of(e, JP) is Status.WARNING
    steps = feed(e, renewal)
    assert status_of(e, JP) is Status.OK
    assert [(c.previous, c.status) for c in changes(steps)] == [(Status.WARNING, Status.OK)]
    assert "tokio-2026" not in assessment_of(e, JP).reason


def test_a_successor_that_starts_late_leaves_a_gap_and_the_warning_stays() -> None:
    e = jp_engine()
    feed(
        e,
        reserve_fund(1_500_000_000),
        cover(at(days=10)),
        insurance(BILLION, valid_from=at(days=11), valid_to=at(days=400), policy_id="late"),
    )
    assert status_of(e, JP) is Status.WARNING
    assert ahead(e)["judged_at"] == "2024-06-10T13:00:00Z"


def test_a_successor_that_cannot_be_valued_does_not_clear_the_warning() -> None:
    e = jp_engine()
    feed(
        e,
        reserve_fund(1_500_000_000),
        cover(at(days=10)),
        insurance(
            10_000_000,
            valid_from=at(days=10),
            valid_to=at(days=400),
            policy_id="usd",
            currency="USD",
        ),
    )
    # not in force now, so the rule is judged; but no USD price values it at its start
    assert status_of(e, JP) is Status.WARNING
    feed(e, price("150", asset="USD"))
    assert status_of(e, JP) is Status.OK


# -- the end itself and hysteresis ----------------------------------------------------


def test_the_warning_gives_way_to_a_breach_at_the_exact_instant_of_the_end() -> None:
    e = jp_engine()
    steps = feed(e, reserve_fund(1_500_000_000), cover(at(hours=1)))
    steps.append(moment(e, at(hours=1) - timedelta(microseconds=1)))
    assert status_of(e, JP) is Status.WARNING
    assert assessment_of(e, JP).available == 2_500_000_000
    steps.append(moment(e, at(hours=1)))
    assert status_of(e, JP) is Status.BREACH
    assert assessment_of(e, JP).available == 1_500_000_000
    assert [(c.previous, c.status) for c in changes(steps)][-2:] == [
        (Status.BREACH, Status.WARNING),
        (Status.WARNING, Status.BREACH),
    ]


def test_a_foreseen_ratio_at_the_line_does_not_flap() -> None:
    e = jp_engine()
    feed(e, reserve_fund(1_900_000_000), cover(at(days=10)))  # foreseen 95%
    assert status_of(e, JP) is Status.WARNING
    feed(e, reserve_fund(2_010_000_000, when=at(minutes=1)))  # foreseen 100.5%: not clear
    assert status_of(e, JP) is Status.WARNING
    feed(e, reserve_fund(2_050_000_000, when=at(minutes=2)))  # 102.5%: clear by the 2 points
    assert status_of(e, JP) is Status.OK
    feed(e, reserve_fund(1_990_000_000, when=at(minutes=3)))  # 99.5%: warned again at once
    assert status_of(e, JP) is Status.WARNING


def test_a_rule_in_breach_now_keeps_its_own_reason() -> None:
    e = jp_engine()
    feed(e, reserve_fund(500_000_000), cover(at(days=10)))
    assert status_of(e, JP) is Status.BREACH
    assert ahead(e)["leaves_breach"] is True
    assert "tokio-2026" not in assessment_of(e, JP).reason


def test_the_look_ahead_can_be_turned_off() -> None:
    e = jp_engine(insurance_expiry_horizon=None)
    feed(e, reserve_fund(1_500_000_000), cover(at(days=10)))
    assert status_of(e, JP) is Status.OK
    assert "insurance_ahead" not in assessment_of(e, JP).evidence


def test_a_longer_horizon_sees_further() -> None:
    e = jp_engine(insurance_expiry_horizon="60d")
    feed(e, reserve_fund(1_500_000_000), cover(at(days=45)))
    assert status_of(e, JP) is Status.WARNING
    assert ahead(e)["horizon"] == "60d"


# -- the other rules that count insurance ---------------------------------------------


def test_hk_compensation_cover_warns_before_its_insurance_ends() -> None:
    policy = parse_policy({"exchanges": {"default": {"packs": ["hk"]}}})
    e = instant_engine(policy)
    feed(
        e,
        price("1"),
        wallet("100", wallet_id="cold"),
        wallet("10", wallet_id="hot", custody="hot"),  # required: 50 + 10 = 60
        reserve_fund("40"),
        cover(at(days=29), 40),  # 80 = 133%; without the insurance 67%
    )
    rule = "hk.compensation_cover"
    assert status_of(e, rule) is Status.WARNING
    assert ahead(e, rule)["shortfall"] == "20"
    assert "Insurance tokio-2026 ends at 2024-06-29T13:00:00Z" in assessment_of(e, rule).reason
    # cover without insurance has nothing to foresee
    e = instant_engine(
        parse_policy(
            {
                "packs": {"hk": {"compensation_cover": {"components": ["reserve_fund"]}}},
                "exchanges": {"default": {"packs": ["hk"]}},
            }
        )
    )
    feed(e, price("1"), wallet("100", wallet_id="cold"), reserve_fund("80"), cover(at(days=29), 40))
    assert "insurance_ahead" not in assessment_of(e, rule).evidence


def test_eu_mica_looks_90_days_ahead_and_a_renewal_must_itself_qualify() -> None:
    e = instant_engine(parse_policy({"exchanges": {"default": {"packs": ["eu"]}}}))
    rule = "eu.mica_own_funds"
    feed(
        e,
        price("170", asset="EUR"),
        fixed_overheads("400000"),  # a quarter: 100,000 EUR < the class 3 minimum 150,000
        own_funds("100000"),
        cover(at(days=80), 100_000, currency="EUR"),  # 200,000 EUR: 133%
    )
    assert status_of(e, rule) is Status.WARNING
    assert ahead(e, rule)["horizon"] == "90d"
    assert ahead(e, rule)["shortfall"] == str(50_000 * 170)
    # a successor with a term under a year does not count for MiCA, so it clears nothing
    feed(
        e,
        insurance(
            100_000,
            currency="EUR",
            valid_from=at(days=80),
            valid_to=at(days=200),
            policy_id="short",
            when=at(minutes=1),
        ),
    )
    assert status_of(e, rule) is Status.WARNING
    feed(
        e,
        insurance(
            100_000,
            currency="EUR",
            valid_from=at(days=80),
            valid_to=at(days=80) + YEAR,
            policy_id="year",
            when=at(minutes=2),
        ),
    )
    assert status_of(e, rule) is Status.OK


# -- replay -----------------------------------------------------------------------------


def test_replay_warns_of_the_end_and_clears_on_renewal_the_same_way_every_time() -> None:
    lines = [
        line(reserve_fund(1_500_000_000, event_id="f-1"), key="dmm"),
        line(cover(at(days=40), event_id="i-1"), key="dmm"),
        # ten days on the end is within the horizon: the fund's new figure brings the time
        line(reserve_fund(1_500_000_000, when=at(days=10), event_id="f-2"), key="dmm"),
        line(
            insurance(
                BILLION,
                valid_from=at(days=40),
                valid_to=at(days=405),
                policy_id="tokio-2027",
                when=at(days=11),
                event_id="i-2",
            ),
            key="dmm",
        ),
    ]
    outputs = []
    for _ in range(2):
        out = io.StringIO()
        replay(lines, instant_engine(load_policy()), out)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    events = [json.loads(text)["data"] for text in outputs[0].splitlines()]
    reserve = [(d["previous_status"], d["status"], d["as_of"]) for d in events if d["rule"] == JP]
    assert reserve == [  # fund and cover of one moment are judged together
        ("unknown", "ok", "2024-05-31T13:00:00Z"),
        ("ok", "warning", "2024-06-10T13:00:00Z"),
        ("warning", "ok", "2024-06-11T13:00:00Z"),
    ]
    warned = next(d for d in events if d["rule"] == JP and d["status"] == "warning")
    assert "Insurance tokio-2026 ends at 2024-07-10T13:00:00Z" in warned["reason"]
    assert warned["evidence"]["insurance_ahead"]["shortfall"] == "500000000"
