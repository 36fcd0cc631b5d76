"""Holdings: running quantity and value totals against a brute-force recomputation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, Inexact, getcontext, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.events import Custody, Holder, WalletBalance
from monitor.core.events.text import MAX_DECIMAL_PLACES, MAX_INTEGER_DIGITS
from monitor.core.money import VALUE_CONTEXT
from monitor.core.state.holdings import Holdings
from tests.unit.builders import T0, event, wallet

ASSETS = ["BTC", "ETH", "XRP"]
WALLETS = ["w-1", "w-2", "w-3"]


def snapshot(balance: str, **fields: object) -> WalletBalance:
    decoded = event(wallet(balance, **fields))  # type: ignore[arg-type]
    assert isinstance(decoded, WalletBalance)
    return decoded


def test_a_newer_snapshot_replaces_the_older_one() -> None:
    holdings = Holdings()
    prices = {"BTC": Decimal(10)}
    holdings.replace(snapshot("3", when=T0), prices)
    later = snapshot("5", when=T0 + timedelta(seconds=1))
    assert holdings.newer_than_held(later)
    holdings.replace(later, prices)
    assert holdings.quantity_of("BTC", Custody.COLD, Holder.CUSTOMER) == 5
    assert holdings.value_of(Custody.COLD, Holder.CUSTOMER) == 50


def test_a_snapshot_at_the_same_time_is_not_newer() -> None:
    holdings = Holdings()
    holdings.replace(snapshot("3", when=T0), {})
    assert not holdings.newer_than_held(snapshot("9", when=T0))
    assert not holdings.newer_than_held(snapshot("9", when=T0 - timedelta(seconds=1)))


def test_a_wallet_moved_from_hot_to_cold_leaves_its_old_position() -> None:
    holdings = Holdings()
    prices = {"BTC": Decimal(2)}
    holdings.replace(snapshot("4", custody="hot", when=T0), prices)
    holdings.replace(snapshot("4", custody="cold", when=T0 + timedelta(seconds=1)), prices)
    assert holdings.quantity_of("BTC", Custody.HOT, Holder.CUSTOMER) == 0
    assert holdings.quantity_of("BTC", Custody.COLD, Holder.CUSTOMER) == 4
    assert holdings.value_of(Custody.HOT, Holder.CUSTOMER) == 0
    assert holdings.value_of(Custody.COLD, Holder.CUSTOMER) == 8


def test_an_unpriced_asset_is_valued_once_its_first_price_arrives() -> None:
    holdings = Holdings()
    holdings.replace(snapshot("3", asset="ETH"), {})
    assert holdings.unpriced == {"ETH"}
    assert holdings.value_of(Custody.COLD, Holder.CUSTOMER) == 0
    holdings.reprice("ETH", Decimal(7))
    assert holdings.unpriced == set()
    assert holdings.value_of(Custody.COLD, Holder.CUSTOMER) == 21


def test_a_price_move_revalues_by_quantity_times_the_change() -> None:
    holdings = Holdings()
    holdings.replace(snapshot("3", wallet_id="a"), {"BTC": Decimal(10)})
    holdings.replace(snapshot("2", wallet_id="b", custody="hot"), {"BTC": Decimal(10)})
    holdings.reprice("BTC", Decimal("10.5"))
    assert holdings.value_of(Custody.COLD, Holder.CUSTOMER) == Decimal("31.5")
    assert holdings.value_of(Custody.HOT, Holder.CUSTOMER) == Decimal(21)


def test_a_wide_balance_moved_to_another_position_leaves_nothing_behind() -> None:
    # 46 digits: more than the default context's 28, fewer than the money context's 60
    wide = "1000000000000000.000000000000000000000000000001"
    holdings = Holdings()
    holdings.reprice("BTC", Decimal(1))
    holdings.replace(snapshot(wide, wallet_id="w-1", custody="hot", holder="guarantee"), {})
    later = T0 + timedelta(seconds=1)
    holdings.replace(
        snapshot("0", wallet_id="w-1", custody="hot", holder="customer", when=later), {}
    )
    assert holdings.quantity_of("BTC", Custody.HOT, Holder.GUARANTEE) == 0
    assert holdings.hot_value() == 0


def test_the_value_context_sums_products_of_the_widest_amounts_exactly() -> None:
    widest = Decimal("9" * MAX_INTEGER_DIGITS + "." + "9" * MAX_DECIMAL_PLACES)
    finest = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)
    with localcontext(prec=400):
        exact = widest * widest + finest * finest
    summed = VALUE_CONTEXT.add(
        VALUE_CONTEXT.multiply(widest, widest), VALUE_CONTEXT.multiply(finest, finest)
    )
    assert summed == exact


def test_a_price_of_an_asset_not_held_changes_nothing() -> None:
    holdings = Holdings()
    holdings.reprice("DOGE", Decimal(1))
    assert all(holdings.value_of(c, h) == 0 for c in Custody for h in Holder)
    assert holdings.assets == set() and holdings.unpriced == set()


# -- property: running totals equal a brute-force recomputation ---------------------

quantities = st.one_of(
    st.sampled_from([Decimal(0), Decimal(1), Decimal("2.5")]),  # a balance stated again
    st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False, allow_infinity=False),
)
unit_prices = st.decimals(
    min_value=0, max_value=10**8, places=2, allow_nan=False, allow_infinity=False
)
snapshots = st.tuples(
    st.just("snapshot"),
    st.sampled_from(WALLETS),
    st.sampled_from(ASSETS),
    st.sampled_from(list(Custody)),
    st.sampled_from(list(Holder)),
    st.integers(min_value=0, max_value=8),  # seconds after T0: few values, many ties
    quantities,
)
price_changes = st.tuples(st.just("price"), st.sampled_from(ASSETS), unit_prices)


reads = st.tuples(st.just("read"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(snapshots, price_changes, reads), max_size=50))
def test_running_totals_equal_brute_force(operations: list[tuple]) -> None:
    """Values are read between changes too, so one kept from a read is never stale:
    every read equals the sum over the newest snapshots at the prices then."""
    holdings, prices, taken = _run(operations, _assert_values_are_brute_force)
    held = {snap.asset for snap in taken}
    assert holdings.assets == held
    assert holdings.unpriced == held - set(prices)
    assert holdings.snapshots == {(s.wallet, s.asset): s for s in _newest_per_slot(taken).values()}


def _take(holdings: Holdings, prices: dict[str, Decimal], operation: tuple) -> WalletBalance:
    """Apply a drawn snapshot as the engine does: a balance stated again, or a replacement."""
    _, wallet_id, asset, custody, holder, seconds, balance = operation
    incoming = snapshot(
        str(balance),
        wallet_id=wallet_id,
        asset=asset,
        custody=custody.value,
        holder=holder.value,
        when=T0 + timedelta(seconds=seconds),
    )
    if holdings.newer_than_held(incoming) and not holdings.restate(incoming):
        holdings.replace(incoming, prices)
    return incoming


def _assert_values_are_brute_force(
    holdings: Holdings, newest: dict[tuple[str, str], WalletBalance], prices: dict
) -> None:
    expected_positions: dict[str, dict[tuple[Custody, Holder], Decimal]] = {}
    expected_value: dict[tuple[Custody, Holder], Decimal] = {}
    with localcontext(prec=200):
        for snap in newest.values():
            position = (snap.custody, snap.holder)
            per_asset = expected_positions.setdefault(snap.asset, {})
            per_asset[position] = per_asset.get(position, Decimal(0)) + snap.balance
            if snap.asset in prices:
                value = snap.balance * prices[snap.asset]
                expected_value[position] = expected_value.get(position, Decimal(0)) + value
    # customer values first: read before value_of keeps any value of its own
    customer_values = holdings.customer_values()
    assert _nonzero_positions(holdings.positions) == _nonzero_positions(expected_positions)
    values = {(c, h): holdings.value_of(c, h) for c in Custody for h in Holder}
    assert _nonzero(values) == _nonzero(expected_value)
    with localcontext(prec=200):  # sum() adds in the current context
        hot = sum((v for (c, _), v in expected_value.items() if c is Custody.HOT), Decimal(0))
    assert holdings.hot_value() == hot
    customer = (Custody.COLD, Holder.CUSTOMER), (Custody.HOT, Holder.CUSTOMER)
    assert customer_values == tuple(expected_value.get(p, Decimal(0)) for p in customer)


# amounts of the contract's full width (24 digits before the point, 30 after)
wide = st.builds(
    lambda whole, fraction: Decimal(f"{whole}.{fraction:030d}"),
    st.integers(min_value=10**15, max_value=10**24 - 1),
    st.integers(min_value=0, max_value=10**30 - 1),
)
wide_operations = st.one_of(
    st.tuples(
        st.just("snapshot"),
        st.sampled_from(WALLETS),
        st.sampled_from(ASSETS),
        st.sampled_from(list(Custody)),
        st.sampled_from(list(Holder)),
        st.integers(min_value=0, max_value=8),
        st.one_of(quantities, wide),
    ),
    st.tuples(st.just("price"), st.sampled_from(ASSETS), st.one_of(unit_prices, wide)),
    reads,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(wide_operations, max_size=40))
def test_values_equal_a_fresh_valuation_at_the_widest_amounts(
    operations: list[tuple],
) -> None:
    """An exchange rebuilt from its journal values its holdings afresh: the values of the
    live one must be the same to the last digit, and exact, at the contract's widest
    amounts too (their products have more digits than the money context keeps)."""

    def check(holdings: Holdings, newest: dict, prices: dict) -> None:
        _assert_values_are_a_fresh_valuation(holdings, newest, prices)
        _assert_values_are_brute_force(holdings, newest, prices)
        _assert_values_are_the_decimal_sums(holdings)

    _run(operations, check)


def _assert_values_are_the_decimal_sums(holdings: Holdings) -> None:
    """The value pass's values are those of each position's quantities times their
    prices, summed in ``VALUE_CONTEXT``, in value and in form (coefficient and exponent:
    a ``Decimal`` sum keeps the smallest exponent of its terms, and a journalled peak is
    written with it), everything hot being the customers' hot value plus what others
    hold hot, however the quantities came."""

    def summed(quantities: dict[str, Decimal], start: Decimal) -> Decimal:
        total = start
        for asset, price in holdings.prices.items():
            if asset in quantities:
                total = total + quantities[asset] * price
        return total

    with localcontext(VALUE_CONTEXT):
        cold = summed(holdings.by_position.get((Custody.COLD, Holder.CUSTOMER), {}), Decimal(0))
        hot = summed(holdings.by_position.get((Custody.HOT, Holder.CUSTOMER), {}), Decimal(0))
        everything = summed(holdings.hot_others, hot)
    holdings._values.clear()
    assert [v.as_tuple() for v in holdings.customer_values()] == [
        cold.as_tuple(),
        hot.as_tuple(),
    ]
    assert holdings.hot_value().as_tuple() == everything.as_tuple()


def _assert_values_are_a_fresh_valuation(
    holdings: Holdings, newest: dict[tuple[str, str], WalletBalance], prices: dict
) -> None:
    fresh = Holdings()
    for asset, price in prices.items():
        fresh.reprice(asset, price)
    for snap in sorted(newest.values(), key=lambda s: s.ts):
        fresh.replace(snap, prices)
    assert holdings.customer_values() == fresh.customer_values()
    assert holdings.hot_value() == fresh.hot_value()
    for custody in Custody:
        for holder in Holder:
            assert holdings.value_of(custody, holder) == fresh.value_of(custody, holder)


def _run(
    operations: list[tuple], check: Callable[[Holdings, dict, dict], None]
) -> tuple[Holdings, dict[str, Decimal], list[WalletBalance]]:
    """Apply drawn snapshots and prices; ``check`` the holdings at each read and at the
    end, with the newest snapshot per slot and the prices then."""
    holdings = Holdings()
    prices: dict[str, Decimal] = {}
    taken: list[WalletBalance] = []
    for operation in [*operations, ("read",)]:
        if operation[0] == "snapshot":
            taken.append(_take(holdings, prices, operation))
        elif operation[0] == "price":
            _, asset, new = operation
            prices[asset] = new
            holdings.reprice(asset, new)
        else:
            check(holdings, _newest_per_slot(taken), prices)
    return holdings, prices, taken


def _newest_per_slot(taken: list[WalletBalance]) -> dict[tuple[str, str], WalletBalance]:
    """Per (wallet, asset): the snapshot with the latest ts, the first one on a tie."""
    newest: dict[tuple[str, str], WalletBalance] = {}
    for snap in taken:
        slot = (snap.wallet, snap.asset)
        if slot not in newest or snap.ts > newest[slot].ts:
            newest[slot] = snap
    return newest


def _nonzero(totals: dict) -> dict:
    return {k: v for k, v in totals.items() if v != 0}


def _nonzero_positions(positions: dict) -> dict:
    return {asset: _nonzero(p) for asset, p in positions.items() if _nonzero(p)}


def test_values_are_exact_whatever_the_callers_decimal_context_and_leave_it_as_it_was() -> None:
    """The values a price moment reads are summed in VALUE_CONTEXT, named at each
    operation: a caller's narrow context neither rounds them nor is changed by them."""
    holdings = Holdings()
    prices = {"BTC": Decimal("10700000.123"), "ETH": Decimal("600000.5")}
    for asset, price in prices.items():
        holdings.reprice(asset, price)
    holdings.replace(snapshot("1234.56789", asset="BTC", custody="cold", when=T0), prices)
    holdings.replace(snapshot("98.7654321", asset="ETH", custody="hot", when=T0), prices)
    with localcontext(prec=3) as narrow:
        narrow.clear_flags()  # a copy of the current context: flags other tests raised
        cold, hot = holdings.customer_values()
        everything_hot = holdings.hot_value()
        assert getcontext() is narrow
        assert not narrow.flags[Inexact]  # nothing was rounded in the caller's context
    with localcontext(VALUE_CONTEXT):
        assert cold == Decimal("1234.56789") * prices["BTC"]
        assert hot == everything_hot == Decimal("98.7654321") * prices["ETH"]
