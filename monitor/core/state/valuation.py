"""The latest price of each asset, and conversion into the reporting currency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from monitor.core.events import Price
from monitor.core.money import MONEY_CONTEXT


class Valuer:
    """Latest ``market.prices`` per asset; the newest ``ts`` wins."""

    def __init__(self, reporting_currency: str) -> None:
        self.reporting_currency = reporting_currency
        self.latest: dict[str, Price] = {}
        self.prices: dict[str, Decimal] = {}
        self.newest: datetime | None = None

    def newer_than_held(self, price: Price) -> bool:
        held = self.latest.get(price.asset)
        return held is None or price.ts > held.ts

    def replace(self, price: Price) -> Decimal | None:
        """Take ``price``; returns the price it replaced (None when first)."""
        old = self.prices.get(price.asset)
        self.latest[price.asset] = price
        self.prices[price.asset] = price.price
        if self.newest is None or price.ts > self.newest:
            self.newest = price.ts
        return old

    def forget(self, asset: str) -> None:
        """Stop valuing in ``asset`` (nothing held or stated in it any more)."""
        self.latest.pop(asset, None)
        self.prices.pop(asset, None)

    def to_reporting(self, amount: Decimal, currency: str) -> Decimal | None:
        """``amount`` of ``currency`` in the reporting currency; None without a price."""
        if currency == self.reporting_currency:
            return amount
        price = self.prices.get(currency)
        return None if price is None else MONEY_CONTEXT.multiply(amount, price)
