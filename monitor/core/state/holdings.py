"""Wallet snapshots of one exchange, and running totals over them.

Every wallet balance is an absolute snapshot; the newest ``ts`` per
(wallet, asset) wins. On each accepted snapshot the difference to the one it
replaces is added to two running totals, so no rule ever sums over wallets:

* ``positions[asset][(custody, holder)]`` in units of the asset;
* ``value[(custody, holder)]`` in the reporting currency, kept current when a
  price moves by ``quantity * (new price - old price)``.

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

from monitor.core.events import Custody, Holder, WalletBalance
from monitor.core.money import MONEY_CONTEXT, ZERO
from monitor.core.state.coverage import AssetCoverage, KeyedMin

_add = MONEY_CONTEXT.add
_mul = MONEY_CONTEXT.multiply
_sub = MONEY_CONTEXT.subtract

Position = tuple[Custody, Holder]
_HOT_POSITIONS: tuple[Position, ...] = tuple((Custody.HOT, holder) for holder in Holder)


class Holdings:
    """The wallets of one exchange with running quantity and value totals."""

    def __init__(self) -> None:
        self.snapshots: dict[tuple[str, str], WalletBalance] = {}
        self.positions: dict[str, dict[Position, Decimal]] = {}
        self.value: dict[Position, Decimal] = {}
        self.assets: set[str] = set()
        self.unpriced: set[str] = set()
        self.guarantee = AssetCoverage()
        self.segregation = AssetCoverage()
        # when each asset's customer liability was stated; the oldest is the one to watch
        self.liabilities_stated: KeyedMin[str, datetime] = KeyedMin()
        # when the price each held asset is valued at was stated: the oldest one is the
        # one to watch, since one stale price is enough to misvalue the holdings
        self.prices_stated: KeyedMin[str, datetime] = KeyedMin()

    def newer_than_held(self, snapshot: WalletBalance) -> bool:
        held = self.snapshots.get((snapshot.wallet, snapshot.asset))
        return held is None or snapshot.ts > held.ts

    def replace(self, snapshot: WalletBalance, prices: Mapping[str, Decimal]) -> None:
        """Take ``snapshot`` in place of the one it supersedes (caller checked it is newer)."""
        slot = (snapshot.wallet, snapshot.asset)
        held = self.snapshots.get(slot)
        if held is not None:
            self._move(held.asset, held.custody, held.holder, -held.balance, prices)
        self.snapshots[slot] = snapshot
        self._move(snapshot.asset, snapshot.custody, snapshot.holder, snapshot.balance, prices)

    def owe(self, asset: str, amount: Decimal, stated: datetime, price: Decimal | None) -> None:
        """Customers are owed ``amount`` of ``asset``, as stated at ``stated``."""
        self.segregation.set_required(asset, amount, price)
        self.liabilities_stated.set(asset, stated)

    def priced_at(self, asset: str, stated: datetime) -> None:
        """The price of ``asset`` the holdings are valued at was stated at ``stated``."""
        if asset in self.assets:
            self.prices_stated.set(asset, stated)

    def oldest_price(self) -> tuple[datetime, str] | None:
        """When the oldest price of a held asset was stated, and its asset."""
        return self.prices_stated.smallest()

    def oldest_liability(self) -> tuple[datetime, str] | None:
        """When the oldest customer liability figure was stated, and its asset."""
        return self.liabilities_stated.smallest()

    def hot_value(self) -> Decimal:
        """Value of everything in hot wallets, whoever holds it (priced assets only)."""
        value = self.value
        total = ZERO
        for position in _HOT_POSITIONS:
            if position in value:
                total = _add(total, value[position])
        return total

    def reprice(self, asset: str, old: Decimal | None, new: Decimal) -> None:
        """Revalue every position in ``asset`` after its price moved from ``old`` to ``new``."""
        self.guarantee.reprice(asset, old, new)
        self.segregation.reprice(asset, old, new)
        if asset not in self.assets:
            return
        if old is None:
            self.unpriced.discard(asset)
        step = _sub(new, old or ZERO)
        for position, quantity in self.positions[asset].items():
            self.value[position] = _add(self.value.get(position, ZERO), _mul(quantity, step))

    def quantity_of(self, asset: str, custody: Custody, holder: Holder) -> Decimal:
        return self.positions.get(asset, {}).get((custody, holder), ZERO)

    def value_of(self, custody: Custody, holder: Holder) -> Decimal:
        return self.value.get((custody, holder), ZERO)

    def _move(
        self,
        asset: str,
        custody: Custody,
        holder: Holder,
        amount: Decimal,
        prices: Mapping[str, Decimal],
    ) -> None:
        position = (custody, holder)
        if asset not in self.assets:
            self.assets.add(asset)
            self.positions[asset] = {}
            if asset not in prices:
                self.unpriced.add(asset)
        held = self.positions[asset]
        held[position] = _add(held.get(position, ZERO), amount)
        price = prices.get(asset)
        if price is not None:
            self.value[position] = _add(self.value.get(position, ZERO), _mul(amount, price))
        if holder is Holder.GUARANTEE:
            self.guarantee.set_held(asset, self._across_custody(held, holder), price)
        elif holder is Holder.CUSTOMER:
            self.segregation.set_held(asset, self._across_custody(held, holder), price)
            if custody is Custody.HOT:
                self.guarantee.set_required(asset, held[position], price)

    @staticmethod
    def _across_custody(held: dict[Position, Decimal], holder: Holder) -> Decimal:
        return _add(held.get((Custody.HOT, holder), ZERO), held.get((Custody.COLD, holder), ZERO))
