"""The exchanges a price reaches: in name order, however they came and went."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.state.dependents import Dependents

changes = st.lists(
    st.tuples(st.booleans(), st.sampled_from(["BTC", "ETH"]), st.sampled_from("abcde")),
    max_size=30,
)


@given(changes)
def test_the_exchanges_of_an_asset_are_those_added_and_not_discarded_in_name_order(
    steps: list[tuple[bool, str, str]],
) -> None:
    dependents = Dependents()
    expected: dict[str, set[str]] = {"BTC": set(), "ETH": set()}
    for adds, asset, exchange in steps:
        if adds:
            dependents.add(asset, exchange)
            expected[asset].add(exchange)
        else:
            dependents.discard(asset, exchange)
            expected[asset].discard(exchange)
        # asked between changes too: the order kept must follow every change
        assert dependents.of(asset) == sorted(expected[asset])
    for asset, exchanges in expected.items():
        assert dependents.of(asset) == sorted(exchanges)


def test_a_list_handed_out_is_not_changed_by_a_later_change() -> None:
    """The engine walks the list while the exchanges take a price; one that stops or
    starts depending on the asset meanwhile must not change the walk."""
    dependents = Dependents()
    dependents.add("BTC", "b")
    dependents.add("BTC", "a")
    walked = dependents.of("BTC")
    dependents.discard("BTC", "a")
    dependents.add("BTC", "c")
    assert walked == ["a", "b"]
    assert dependents.of("BTC") == ["b", "c"]
