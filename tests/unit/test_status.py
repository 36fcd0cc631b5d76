"""Thresholds: a ratio becomes a status; improving needs the hysteresis margin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.rules.base import Assessment, classify
from monitor.core.status import Status, Thresholds

# the jp.liability_reserve defaults: breach under 1.0, warning under 1.2, 2 points of margin
T = Thresholds(Decimal("1.0"), Decimal("1.2"), Decimal("0.02"))
D = Decimal
EPS = D("0.000001")

OK, WARNING, BREACH, UNKNOWN = Status.OK, Status.WARNING, Status.BREACH, Status.UNKNOWN


@pytest.mark.parametrize(
    ("ratio", "status"),
    [
        (D("1.0") - EPS, BREACH),
        (D("1.0"), WARNING),  # at the floor is not under it
        (D("1.0") + EPS, WARNING),
        (D("1.2") - EPS, WARNING),
        (D("1.2"), OK),
        (D("1.2") + EPS, OK),
        (D(0), BREACH),
        (D(100), OK),
    ],
)
def test_level_just_below_at_and_just_above_each_threshold(ratio: Decimal, status: Status) -> None:
    assert T.level(ratio) is status
    assert T.classify(ratio, UNKNOWN) is status  # no history: no hysteresis


@pytest.mark.parametrize(
    ("previous", "ratio", "status"),
    [
        (OK, D("1.2") - EPS, WARNING),
        (OK, D("1.0") - EPS, BREACH),
        (WARNING, D("1.0") - EPS, BREACH),
        (OK, D(0), BREACH),
    ],
)
def test_worsening_takes_effect_at_once(previous: Status, ratio: Decimal, status: Status) -> None:
    assert T.classify(ratio, previous) is status


@pytest.mark.parametrize(
    ("previous", "ratio", "status"),
    [
        # out of breach only once the ratio clears 1.0 by 0.02
        (BREACH, D("1.0"), BREACH),
        (BREACH, D("1.02") - EPS, BREACH),
        (BREACH, D("1.02"), WARNING),
        # out of warning only once it clears 1.2 by 0.02
        (WARNING, D("1.2"), WARNING),
        (WARNING, D("1.22") - EPS, WARNING),
        (WARNING, D("1.22"), OK),
        # a jump clears both thresholds at once, or only the lower one
        (BREACH, D("1.22"), OK),
        (BREACH, D("1.21"), WARNING),
    ],
)
def test_improving_needs_the_hysteresis_margin(
    previous: Status, ratio: Decimal, status: Status
) -> None:
    assert T.classify(ratio, previous) is status


@pytest.mark.parametrize(
    ("start", "wobble", "settled"),
    [
        (D("1.5"), ["0.999", "1.001", "1.019", "0.9999", "1.0", "1.01"], BREACH),
        (D("1.5"), ["1.199", "1.201", "1.2", "1.219", "1.1999", "1.21"], WARNING),
    ],
)
def test_a_ratio_hovering_at_a_threshold_does_not_flap(
    start: Decimal, wobble: list[str], settled: Status
) -> None:
    status = T.classify(start, UNKNOWN)
    history = [status]
    for ratio in wobble:
        status = T.classify(D(ratio), status)
        history.append(status)
    assert history == [OK] + [settled] * len(wobble)


def test_without_hysteresis_the_status_follows_the_level() -> None:
    plain = Thresholds(D(1), D("1.2"), D(0))
    assert plain.classify(D(1), BREACH) is WARNING
    assert plain.classify(D("1.2"), WARNING) is OK


def test_thresholds_refuse_inconsistent_levels() -> None:
    with pytest.raises(ValueError, match="warning_below"):
        Thresholds(D("1.2"), D("1.0"), D(0))
    with pytest.raises(ValueError, match="hysteresis"):
        Thresholds(D(1), D("1.2"), D("-0.01"))


def test_an_assessment_without_a_ratio_is_unknown_whatever_came_before() -> None:
    missing = Assessment(None, None, None, None, "no reserve_fund yet")
    for previous in Status:
        assert classify(missing, T, previous) is UNKNOWN


def test_a_known_assessment_after_unknown_takes_its_level() -> None:
    measured = Assessment(D(1), D("1.01"), D("1.01"), D(0), "")
    assert classify(measured, T, UNKNOWN) is WARNING


ratios = st.decimals(min_value=0, max_value=2, places=4, allow_nan=False, allow_infinity=False)
RANK = {BREACH: 0, WARNING: 1, OK: 2}


@settings(max_examples=200, deadline=None)
@given(st.lists(ratios, min_size=1, max_size=40))
def test_status_never_better_than_the_level_nor_better_than_the_margin_allows(
    sequence: list[Decimal],
) -> None:
    status = UNKNOWN
    for ratio in sequence:
        previous, status = status, T.classify(ratio, status)
        level = T.level(ratio)
        # never better than the level of the ratio itself
        assert RANK[status] <= RANK[level]
        if previous is UNKNOWN or RANK[level] <= RANK[previous]:
            assert status is level  # first reading, no change, or worsening: at once
        else:
            assert RANK[status] >= RANK[previous]
            # improving: exactly as far as ratio - hysteresis reaches
            assert status is max(previous, T.level(ratio - T.hysteresis), key=RANK.__getitem__)
