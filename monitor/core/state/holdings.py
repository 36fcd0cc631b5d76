"""Wallet snapshots of one exchange, and running totals over them.

Every wallet balance is an absolute snapshot; the newest ``ts`` per
(wallet, asset) wins. On each accepted snapshot the difference to the one it
replaces is added to a running total, so no rule ever sums over wallets:
``positions[asset][(custody, holder)]``, in units of the asset.

Values in the reporting currency are taken from those quantities and the
prices the exchange is valued at (``prices``) when they are read, once per
change, over the assets held (a handful), never over wallets, and only for the
positions read: a price move costs a dict update, and the judgment it brings
values the hot wallets and the customer positions, one multiplication an asset
each. The hot quantity others than customers hold of each asset is kept with the
positions, so the hot value is the customers' hot value and one short sum more.
Values are summed in ``VALUE_CONTEXT``, exact for amounts of the contract's widths,
so the order of the assets never changes a value.

Assets held without a known price are tracked in ``unpriced``; a value total
is complete only while that set is empty.

Two per-asset coverages (:mod:`monitor.core.state.coverage`) are kept current on the
same changes, one asset at a time:

* ``guarantee``: guarantee crypto in any custody against customer crypto in hot
  wallets (``jp.hot_wallet_guarantee``);
* ``segregation``: customer crypto in any custody against the customer
  liabilities of the ledger, given with :meth:`Holdings.owe` (``jp.segregation``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Final

from monitor.core.events import Custody, Holder, WalletBalance
from monitor.core.money import MONEY_CONTEXT, VALUE_CONTEXT, ZERO
from monitor.core.state.coverage import AssetCoverage, KeyedMin

_add: Final = MONEY_CONTEXT.add
_sub: Final = MONEY_CONTEXT.subtract
_minus: Final = MONEY_CONTEXT.minus
_value_fma: Final = VALUE_CONTEXT.fma

Position = tuple[Custody, Holder]
# Enum members read on every record, bound once: Python 3.11 takes 0.1 µs to read a
# member off its enum class (its metaclass's lookup), ten times a module global's.
_HOT: Final = Custody.HOT
_COLD: Final = Custody.COLD
_CUSTOMER: Final = Holder.CUSTOMER
_GUARANTEE: Final = Holder.GUARANTEE
_COLD_CUSTOMER: Final[Position] = (_COLD, _CUSTOMER)
_HOT_CUSTOMER: Final[Position] = (_HOT, _CUSTOMER)
_NONE: Final[dict[str, Decimal]] = {}


class Holdings:
    """The wallets of one exchange with running quantity and value totals."""

    def __init__(self) -> None:
        self.snapshots: dict[tuple[str, str], WalletBalance] = {}
        self.positions: dict[str, dict[Position, Decimal]] = {}
        self.assets: set[str] = set()
        self.unpriced: set[str] = set()
        # the price each asset is valued at (shared with the two coverages)
        self.prices: dict[str, Decimal] = {}
        self.guarantee = AssetCoverage(self.prices)
        self.segregation = AssetCoverage(self.prices)
        # the same quantities by position, then asset: what a position's value sums
        self.by_position: dict[Position, dict[str, Decimal]] = {}
        # hot quantity of each asset held by others than customers (the house, guarantee
        # funds): with the customers' hot positions, the drain rule's value
        self.hot_others: dict[str, Decimal] = {}
        # values read since the last change of a quantity or a price: by position, and
        # the hot value under the key None
        self._values: dict[Position | None, Decimal] = {}
        # when each asset's customer liability was stated; the oldest is the one to watch
        self.liabilities_stated: KeyedMin[str, datetime] = KeyedMin()
        # when the price each held asset is valued at was stated: the oldest one is the
        # one to watch, since one stale price is enough to misvalue the holdings
        self._prices_stated: dict[str, datetime] = {}
        self._oldest_price: tuple[datetime, str] | None = None
        self._oldest_known = True
        # oldest_price()'s time alone, found while _oldest_known is False (None: not yet)
        self._oldest_time: datetime | None = None

    def newer_than_held(self, snapshot: WalletBalance) -> bool:
        held = self.snapshots.get((snapshot.wallet, snapshot.asset))
        return held is None or snapshot.ts > held.ts

    def replace(self, snapshot: WalletBalance, prices: Mapping[str, Decimal]) -> None:
        """Take ``snapshot`` in place of the one it supersedes (caller checked it is newer)."""
        asset = snapshot.asset
        if asset not in self.prices and asset in prices:
            self.prices[asset] = prices[asset]
        slot = (snapshot.wallet, asset)
        held = self.snapshots.get(slot)
        self.snapshots[slot] = snapshot
        if held is not None and (held.custody, held.holder) == (snapshot.custody, snapshot.holder):
            # the same position: one move by the difference
            change = _sub(snapshot.balance, held.balance)
            if change:
                self._move(asset, snapshot.custody, snapshot.holder, change)
            return
        if held is not None:
            # negated in the money context: a bare minus rounds to the default 28 digits
            self._move(held.asset, held.custody, held.holder, _minus(held.balance))
        self._move(snapshot.asset, snapshot.custody, snapshot.holder, snapshot.balance)

    def restate(self, snapshot: WalletBalance) -> bool:
        """Take ``snapshot`` in place of the one it supersedes if it states the same balance
        of the same position again (caller checked it is newer): nothing else changes.
        Whether it did."""
        slot = (snapshot.wallet, snapshot.asset)
        held = self.snapshots.get(slot)
        if (
            held is None
            or held.balance != snapshot.balance
            or held.custody is not snapshot.custody
            or held.holder is not snapshot.holder
        ):
            return False
        self.snapshots[slot] = snapshot
        return True

    def owe(self, asset: str, amount: Decimal, stated: datetime, price: Decimal | None) -> None:
        """Customers are owed ``amount`` of ``asset``, as stated at ``stated``."""
        if price is not None and asset not in self.prices:
            self.prices[asset] = price
        self.segregation.set_required(asset, amount, price)
        self.liabilities_stated.set(asset, stated)

    def priced_at(self, asset: str, stated: datetime) -> None:
        """The price of ``asset`` the holdings are valued at was stated at ``stated``."""
        if asset in self.assets and self._prices_stated.get(asset) != stated:
            self._prices_stated[asset] = stated
            self._oldest_known = False
            self._oldest_time = None

    def oldest_price(self) -> tuple[datetime, str] | None:
        """When the oldest price of a held asset was stated, and its asset."""
        if not self._oldest_known:
            stated = self._prices_stated
            self._oldest_price = (
                min((moment, asset) for asset, moment in stated.items()) if stated else None
            )
            self._oldest_known = True
        return self._oldest_price

    def oldest_price_time(self) -> datetime | None:
        """When the oldest price of a held asset was stated (:meth:`oldest_price`'s time,
        without finding its asset: what an age check needs)."""
        if self._oldest_known:
            oldest = self._oldest_price
            return None if oldest is None else oldest[0]
        time = self._oldest_time
        if time is None:
            stated = self._prices_stated
            time = self._oldest_time = min(stated.values()) if stated else None
        return time

    def oldest_liability(self) -> tuple[datetime, str] | None:
        """When the oldest customer liability figure was stated, and its asset."""
        return self.liabilities_stated.smallest()

    def hot_value(self) -> Decimal:
        """Value of everything in hot wallets, whoever holds it (priced assets only)."""
        value = self._values.get(None)
        if value is None:
            self._value_pass()
            value = self._values[None]
        return value

    def reprice(self, asset: str, new: Decimal, stated: datetime | None = None) -> None:
        """Value ``asset`` at ``new`` from now on, a price stated at ``stated`` (see
        :meth:`priced_at`)."""
        self.prices[asset] = new
        self.guarantee.repriced(asset)
        self.segregation.repriced(asset)
        if asset in self.assets:
            self.unpriced.discard(asset)
            if self._values:
                self._values = {}
            if stated is not None:
                self.priced_at(asset, stated)

    def quantity_of(self, asset: str, custody: Custody, holder: Holder) -> Decimal:
        return self.positions.get(asset, {}).get((custody, holder), ZERO)

    def value_of(self, custody: Custody, holder: Holder) -> Decimal:
        """Value of one position at the prices held (priced assets only)."""
        position = (custody, holder)
        value = self._values.get(position)
        if value is None:
            quantities = self.by_position.get(position)
            value = ZERO if quantities is None else self._valued(quantities)
            self._values[position] = value
        return value

    def customer_values(self) -> tuple[Decimal, Decimal]:
        """The values of customer crypto in cold and in hot wallets (what the cold-storage
        share divides, at every price moment)."""
        values = self._values
        cold, hot = values.get(_COLD_CUSTOMER), values.get(_HOT_CUSTOMER)
        if cold is None or hot is None:
            self._value_pass()
            cold, hot = values[_COLD_CUSTOMER], values[_HOT_CUSTOMER]
        return cold, hot

    def _value_pass(self) -> None:
        """The three values a price moment reads, in one pass over the priced assets:
        customer crypto in cold and in hot wallets (the cold share) and everything hot
        (the drain's value).

        Everything hot is customer crypto in hot wallets plus what others (the house,
        guarantee funds) hold hot, which is a handful of assets at most: summed over
        those alone. Exact sums (``VALUE_CONTEXT``), so the same value, to the last
        digit and exponent, as a sum over every asset of its whole hot quantity.

        Each term is one fused multiply-add in ``VALUE_CONTEXT`` (``_value_fma``, bound
        once): one call and one ``Decimal`` made, where a product and a sum written as
        operators made two, in a context made current for the pass and put back after
        it (about as dear in all, measured; this leaves the caller's context alone).
        Exact either way: the same value and form.
        """
        prices = self.prices
        by_position = self.by_position
        held_cold = by_position.get(_COLD_CUSTOMER, _NONE)
        held_hot = by_position.get(_HOT_CUSTOMER, _NONE)
        fma = _value_fma
        cold = hot = ZERO
        for asset, price in prices.items():
            quantity = held_cold.get(asset)
            if quantity is not None:
                cold = fma(quantity, price, cold)
            quantity = held_hot.get(asset)
            if quantity is not None:
                hot = fma(quantity, price, hot)
        everything = hot
        for asset, held in self.hot_others.items():
            valued_at = prices.get(asset)
            if valued_at is not None:
                everything = fma(held, valued_at, everything)
        values = self._values
        values[_COLD_CUSTOMER], values[_HOT_CUSTOMER], values[None] = cold, hot, everything

    def _valued(self, quantities: dict[str, Decimal]) -> Decimal:
        """The value of ``quantities`` (by asset) at the prices held (priced assets only)."""
        value = ZERO
        prices = self.prices
        for asset, quantity in quantities.items():
            if asset in prices:
                value = _value_fma(quantity, prices[asset], value)
        return value

    def _move(
        self,
        asset: str,
        custody: Custody,
        holder: Holder,
        amount: Decimal,
    ) -> None:
        position = (custody, holder)
        if asset not in self.assets:
            self.assets.add(asset)
            self.positions[asset] = {}
            if asset not in self.prices:
                self.unpriced.add(asset)
        held = self.positions[asset]
        quantity = held[position] = _add(held.get(position, ZERO), amount)
        self.by_position.setdefault(position, {})[asset] = quantity
        if custody is _HOT and holder is not _CUSTOMER:
            self.hot_others[asset] = _add(self.hot_others.get(asset, ZERO), amount)
        if self._values:
            self._values = {}
        price = self.prices.get(asset)
        if holder is _GUARANTEE:
            self.guarantee.set_held(asset, self._across_custody(held, holder), price)
        elif holder is _CUSTOMER:
            self.segregation.set_held(asset, self._across_custody(held, holder), price)
            if custody is _HOT:
                self.guarantee.set_required(asset, held[position], price)

    @staticmethod
    def _across_custody(held: dict[Position, Decimal], holder: Holder) -> Decimal:
        return _add(held.get((_HOT, holder), ZERO), held.get((_COLD, holder), ZERO))
