"""Which exchanges are valued in each asset: those a price of the asset moves.

The engine hands every price to the exchanges valued in its asset, in name order, so
that the same records give the same changes in the same order. Sorting them at every
price cost a sort of every dependent exchange's name per price record; the order is
kept here, made again only after the asset's dependents change (an exchange starts or
stops holding it, which is rare next to prices).
"""

from __future__ import annotations


class Dependents:
    """Asset or currency -> the names of the exchanges valued in it."""

    def __init__(self) -> None:
        self._by_asset: dict[str, set[str]] = {}
        self._ordered: dict[str, list[str]] = {}  # by_asset's sets in name order, once asked

    def add(self, asset: str, exchange: str) -> None:
        held = self._by_asset.get(asset)
        if held is None:
            held = self._by_asset[asset] = set()
        if exchange not in held:
            held.add(exchange)
            self._ordered.pop(asset, None)

    def discard(self, asset: str, exchange: str) -> None:
        held = self._by_asset.get(asset)
        if held is not None and exchange in held:
            held.discard(exchange)
            self._ordered.pop(asset, None)

    def of(self, asset: str) -> list[str]:
        """The exchanges valued in ``asset``, in name order (do not change the list)."""
        ordered = self._ordered.get(asset)
        if ordered is None:
            ordered = self._ordered[asset] = sorted(self._by_asset.get(asset, ()))
        return ordered
