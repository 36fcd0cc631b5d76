"""The prices one exchange is valued at (those in force at its clock), and conversion."""

from __future__ import annotations

from decimal import Decimal

from monitor.core.events import Price
from monitor.core.money import MONEY_CONTEXT


class Valuer:
    """The price of each asset or currency an exchange is valued in, as of its clock."""

    def __init__(self, reporting_currency: str) -> None:
        self.reporting_currency = reporting_currency
        self.latest: dict[str, Price] = {}
        self.prices: dict[str, Decimal] = {}

    def replace(self, price: Price, asset: str, amount: Decimal) -> Decimal | None:
        """Take ``price`` (of ``asset``, at ``amount``: its fields, as the caller read them);
        returns the price it replaced (None when first)."""
        prices = self.prices
        old = prices.get(asset)
        self.latest[asset] = price
        prices[asset] = amount
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
