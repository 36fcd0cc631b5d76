"""Wallet snapshots of one exchange, and running totals over them.

Every wallet balance is an absolute snapshot; the newest ``ts`` per
(wallet, asset) wins. On each accepted snapshot the difference to the one it
replaces is added to two running totals, so no rule ever sums over wallets:

* ``positions[asset][(custody, holder)]`` in units of the asset;
* ``value[(custody, holder)]`` in the reporting currency, kept current when a
  price moves by ``quantity * (new price - old price)``.

Assets held without a known price are tracked in ``unpriced``; a value total
is complete only while that set is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from monitor.core.events import Custody, Holder, WalletBalance
from monitor.core.money import MONEY_CONTEXT, ZERO

_add = MONEY_CONTEXT.add
_mul = MONEY_CONTEXT.multiply
_sub = MONEY_CONTEXT.subtract

Position = tuple[Custody, Holder]


class Holdings:
    """The wallets of one exchange with running quantity and value totals."""

    def __init__(self) -> None:
        self.snapshots: dict[tuple[str, str], WalletBalance] = {}
        self.positions: dict[str, dict[Position, Decimal]] = {}
        self.value: dict[Position, Decimal] = {}
        self.assets: set[str] = set()
        self.unpriced: set[str] = set()

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

    def reprice(self, asset: str, old: Decimal | None, new: Decimal) -> None:
        """Revalue every position in ``asset`` after its price moved from ``old`` to ``new``."""
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
