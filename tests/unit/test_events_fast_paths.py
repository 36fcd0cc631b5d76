"""The shortcuts of the event decoder take exactly what the contract's rules take.

Decoding is fast because the common forms are recognised by cheap checks (an
amount of ASCII digits, a timestamp shaped ``2024-05-31T13:26:00Z``, an exchange
id seen before); everything else goes the long way. These properties hold the
shortcuts to the long way, on the edges where they could part.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.events import EXCHANGE_ID_PATTERN, _Matches
from monitor.core.events.text import (
    EVENT_TIMES,
    EVENT_TIMES_KEPT,
    RFC3339,
    is_plain_utc,
    parse_rfc3339,
    to_decimal,
    to_decimal_checked,
    to_event_time,
)


def _outcome(convert: Any, value: Any) -> tuple[str, Any]:
    try:
        result = convert(value)
    except ValueError as error:
        return ("refused", str(error))
    if isinstance(result, Decimal):
        return ("accepted", result.as_tuple())
    return ("accepted", result)


AMOUNT_CHARACTERS = "0123456789.eE+-_ \t\u0661\uff11"
amount_texts = st.one_of(
    st.text(alphabet=AMOUNT_CHARACTERS, max_size=12),
    st.text(alphabet="0123456789", min_size=20, max_size=40),
    st.builds(
        lambda whole, fraction: f"{whole}.{fraction}",
        st.text(alphabet="0123456789", min_size=1, max_size=30),
        st.text(alphabet="0123456789", min_size=1, max_size=40),
    ),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


@given(amount_texts)
def test_the_quick_amount_check_agrees_with_every_rule(text: str) -> None:
    assert _outcome(to_decimal, text) == _outcome(to_decimal_checked, text)


@given(st.one_of(st.integers(), st.decimals(allow_nan=True, allow_infinity=True), st.none()))
def test_amounts_that_are_not_text_take_the_long_way(value: Any) -> None:
    assert _outcome(to_decimal, value) == _outcome(to_decimal_checked, value)


def _spelled(characters: list[str], fraction: str) -> str:
    """``2024-05-31T13:26:00Z`` with each digit replaced by one of ``characters``, and
    ``fraction`` before the Z (``.123``, say)."""
    template = "dddd-dd-ddTdd:dd:dd"
    replacements = iter(characters)
    return "".join(next(replacements) if c == "d" else c for c in template) + fraction + "Z"


digit_lookalikes = st.sampled_from(list("0123456789") * 4 + list("+- _.aZ\u0661\uff10\u00b2"))
fractions = st.one_of(
    st.just(""),
    st.text(alphabet="0123456789", min_size=1, max_size=9).map(lambda digits: "." + digits),
    st.text(alphabet="0123456789.:+-Z \u0661\u00b2", max_size=4).map(lambda text: "." + text),
)


@given(st.lists(digit_lookalikes, min_size=14, max_size=14), fractions)
def test_a_timestamp_of_a_common_shape_is_taken_only_if_rfc3339_takes_it(
    characters: list[str], fraction: str
) -> None:
    text = _spelled(characters, fraction)
    try:
        moment: datetime | None = parse_rfc3339(text)
    except ValueError:
        moment = None
    if moment is not None:
        assert RFC3339.fullmatch(text), text
    digits = fraction[1:]
    if not fraction or (digits.isdigit() and digits.isascii()):
        assert is_plain_utc(text)  # the quick path is the one taken


def test_a_remembered_exchange_id_does_not_let_a_wrong_one_through() -> None:
    matches = _Matches(EXCHANGE_ID_PATTERN)
    assert matches("dmm") == "dmm"
    assert matches("dmm") == "dmm"  # remembered
    for wrong in ("DMM", "dmm\n", "-dmm"):
        try:
            matches(wrong)
        except ValueError as error:
            assert str(error) == f"String should match pattern '{EXCHANGE_ID_PATTERN}'"
        else:
            raise AssertionError(wrong)
    assert matches.matched == {"dmm"}


def test_the_remembered_values_are_bounded() -> None:
    matches = _Matches(EXCHANGE_ID_PATTERN)
    for n in range(_Matches.REMEMBERED + 100):
        matches(f"venue-{n}")
    assert len(matches.matched) == _Matches.REMEMBERED


@given(
    st.lists(
        st.sampled_from(
            [
                "2024-05-31T13:26:00Z",
                "2024-05-31T13:26:00+09:00",
                "2024-05-31 13:26:00Z",
                "1999-12-31T23:59:59Z",
                "2024-02-30T00:00:00Z",
                "2024-05-31T13:26:00.5Z",
            ]
        ),
        max_size=8,
    )
)
def test_a_remembered_event_time_answers_as_the_parse_would(values: list[str]) -> None:
    """Event times are remembered once parsed; a value answers the same the first time,
    from memory, and after the memory is emptied."""
    first = {value: _outcome(to_event_time, value) for value in values}
    for value in values:
        assert _outcome(to_event_time, value) == first[value]
    EVENT_TIMES.clear()
    for value in values:
        assert _outcome(to_event_time, value) == first[value]


def test_the_remembered_event_times_are_bounded() -> None:
    for second in range(EVENT_TIMES_KEPT + 10):
        to_event_time(f"2024-05-31T13:{second // 60 % 60:02d}:{second % 60:02d}Z")
    assert 0 < len(EVENT_TIMES) <= EVENT_TIMES_KEPT
