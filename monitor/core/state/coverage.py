"""Per-asset coverage: a held quantity against a required one, kept current per change.

Two rules compare quantities asset by asset: ``jp.hot_wallet_guarantee``
(guarantee crypto against customer crypto in hot wallets) and
``jp.segregation`` (customer crypto against what is owed to customers). An
:class:`AssetCoverage` holds, per asset, the ``held`` and the ``required``
quantity and keeps, as each one changes:

* ``short``: the assets held under what is required, with the missing quantity;
* ``required_value`` and ``shortfall_value``: the required and the missing
  quantities valued at the prices held (taken when read, over the assets, and
  kept until a quantity or a price changes: a price move costs O(1));
* the worst ratio ``held / required`` over the assets with a requirement;
* ``unstated`` and ``unreported``: assets held with no requirement ever stated,
  and assets required with no holding ever reported.

A change of one asset costs O(1) for the set and the values and O(log n)
amortised for the worst ratio (a heap with lazy deletion; no exact minimum
under arbitrary updates is cheaper), where n is the number of assets; reading
any of them costs O(1). Nothing here loops over wallets, and over assets only
in the heap's occasional rebuild, which is paid for by the stale entries it
drops. :class:`KeyedMin` also gives the oldest customer-liability figure.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from decimal import Decimal
from typing import Final, Generic, TypeVar

from monitor.core.money import MONEY_CONTEXT, VALUE_CONTEXT, ZERO

# the contexts' methods bound once (Final: the compiled module keeps them in C statics);
# sums of quantities times prices in VALUE_CONTEXT: exact (see money)
_subtract: Final = MONEY_CONTEXT.subtract
_divide: Final = MONEY_CONTEXT.divide
_value_fma: Final = VALUE_CONTEXT.fma  # q * p + sum, exact: one call, one Decimal

# Ratios are capped here: an asset with a dust requirement would otherwise give a
# ratio of 10^20 or more, which text forms cannot carry and nothing depends on.
RATIO_CAP: Final = Decimal(1_000_000)

K = TypeVar("K", bound=str)
V = TypeVar("V", Decimal, datetime)


class KeyedMin(Generic[K, V]):
    """The smallest of a set of keyed values, with lazy deletion; ties go to the smallest key.

    Ties break by key, never by the order values were set: an engine rebuilt from
    its journal sets them in another order and must name the same worst asset.

    :meth:`set` is O(log n) amortised; :meth:`smallest` is O(1). Entries that a
    later :meth:`set` made stale stay in the heap until they reach its top, and
    the heap is rebuilt when stale entries outnumber live ones, so its size stays
    within a constant factor of the number of keys.
    """

    def __init__(self) -> None:
        self.values: dict[K, V] = {}
        self._heap: list[tuple[V, K]] = []

    def set(self, key: K, value: V | None) -> None:
        """Give ``key`` the ``value``; ``None`` removes it."""
        if value is None:
            if self.values.pop(key, None) is None:
                return
        else:
            if self.values.get(key) == value:
                return
            self.values[key] = value
            heapq.heappush(self._heap, (value, key))
        if len(self._heap) > 2 * len(self.values) + 16:
            self._rebuild()
        self._settle()

    def smallest(self) -> tuple[V, K] | None:
        """The smallest value and its key, or None when there is no key."""
        if not self._heap:
            return None
        value, key = self._heap[0]
        return value, key

    def _settle(self) -> None:
        # keep the top live, so smallest() is a pure read
        heap = self._heap
        while heap and self.values.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)

    def _rebuild(self) -> None:
        self._heap = [(value, key) for key, value in self.values.items()]
        heapq.heapify(self._heap)


class AssetCoverage:
    """``held`` against ``required`` per asset, with the short assets and their value."""

    def __init__(self, prices: dict[str, Decimal]) -> None:
        self.held: dict[str, Decimal] = {}
        self.required: dict[str, Decimal] = {}
        self.short: dict[str, Decimal] = {}
        # the price each asset is valued at: the holdings' own, shared, which they set
        self.prices: dict[str, Decimal] = prices
        self._values: tuple[Decimal, Decimal] | None = None  # required, shortfall
        # assets with a requirement or a shortfall but no price: the values above
        # are complete only while this is empty
        self.unpriced: set[str] = set()
        # assets held while no requirement was ever stated for them
        self.unstated: set[str] = set()
        # assets required while no holding of them was ever reported (not even zero)
        self.unreported: set[str] = set()
        self.ratios: KeyedMin[str, Decimal] = KeyedMin()

    def set_held(self, asset: str, quantity: Decimal, price: Decimal | None) -> None:
        """The quantity of ``asset`` now held (``price``: its latest price, if any)."""
        self.held[asset] = quantity
        self._update(asset, price)

    def set_required(self, asset: str, quantity: Decimal, price: Decimal | None) -> None:
        """The quantity of ``asset`` now required."""
        self.required[asset] = quantity
        self._values = None
        self._update(asset, price)

    def repriced(self, asset: str) -> None:
        """``asset`` is valued at a new price in the shared table from now on."""
        self.unpriced.discard(asset)
        if asset in self.required or asset in self.short:
            self._values = None

    @property
    def required_value(self) -> Decimal:
        """The required quantities valued at the prices held (priced assets only)."""
        return (self._values or self._valued())[0]

    @property
    def shortfall_value(self) -> Decimal:
        """The missing quantities valued at the prices held (priced assets only)."""
        return (self._values or self._valued())[1]

    def _valued(self) -> tuple[Decimal, Decimal]:
        prices, required, shortfall = self.prices, ZERO, ZERO
        for asset, quantity in self.required.items():
            price = prices.get(asset)
            if price is not None and quantity:
                required = _value_fma(quantity, price, required)
        for asset, missing in self.short.items():
            price = prices.get(asset)
            if price is not None:
                shortfall = _value_fma(missing, price, shortfall)
        self._values = (required, shortfall)
        return self._values

    def worst(self) -> tuple[Decimal, str] | None:
        """The lowest ``held / required`` (capped) and its asset; None when nothing is required."""
        return self.ratios.smallest()

    @property
    def available_value(self) -> Decimal:
        """The value of what is held, counted per asset up to what that asset requires."""
        return _subtract(self.required_value, self.shortfall_value)

    def _update(self, asset: str, price: Decimal | None) -> None:
        held = self.held.get(asset, ZERO)
        stated = asset in self.required
        required = self.required.get(asset, ZERO)
        if held > ZERO and not stated:
            self.unstated.add(asset)
        else:
            self.unstated.discard(asset)
        if required > ZERO and asset not in self.held:
            self.unreported.add(asset)
        else:
            self.unreported.discard(asset)
        if price is None:
            if required > ZERO:
                self.unpriced.add(asset)
            else:
                self.unpriced.discard(asset)
        missing = _subtract(required, held) if required > held else ZERO
        before = self.short.get(asset, ZERO)
        if missing != before:
            if missing:
                self.short[asset] = missing
            else:
                del self.short[asset]
            self._values = None
        if required > ZERO:
            self.ratios.set(asset, min(_divide(held, required), RATIO_CAP))
        else:
            self.ratios.set(asset, None)
