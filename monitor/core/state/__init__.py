"""Pieces of an exchange's state: its feeds, ledger, rule statuses, hot-wallet falls.

Plain data, owned and updated by :class:`monitor.core.state.exchange.Exchange`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from monitor.core.events import (
    CustomerLiability,
    FixedOverheads,
    InsurancePolicy,
    OwnFunds,
    ReserveFund,
)
from monitor.core.money import decimal_text
from monitor.core.state.rule_state import RuleState

__all__ = ["AWAITING_TRADES_KEPT", "HOT_FALLS_KEPT", "Feed", "HotFall", "Ledger", "RuleState"]


class Feed:
    """The names of the input feeds whose age the rules and metrics watch."""

    TRADES = "trades"
    WALLETS = "wallet_balances"
    LEDGER = "ledger"
    PRICES = "prices"


@dataclass(slots=True)
class Ledger:
    """The exchange's back-office figures, each the newest snapshot."""

    liabilities: dict[str, CustomerLiability] = field(default_factory=dict)
    reserve_fund: ReserveFund | None = None
    insurance: dict[str, InsurancePolicy] = field(default_factory=dict)
    own_funds: OwnFunds | None = None
    fixed_overheads: FixedOverheads | None = None


# a msgspec struct: made in C, at a tenth of a frozen dataclass's cost (whose __init__
# sets each field through object.__setattr__), on every snapshot that lowers a hot balance
class HotFall(msgspec.Struct, frozen=True, gc=False):
    """One hot-wallet snapshot that lowered a balance: evidence for ``ops.hot_wallet_drain``."""

    ts: datetime
    wallet: str
    asset: str
    holder: str
    before: Decimal
    after: Decimal
    value: Decimal  # of the quantity that left, at the price of the time (0 unpriced)

    @property
    def document(self) -> dict[str, Any]:
        """The JSON form (evidence and the journal read it; most falls are dropped for
        larger ones before anyone does)."""
        return {
            "ts": self.ts.isoformat(),
            "wallet": self.wallet,
            "asset": self.asset,
            "holder": self.holder,
            "before": decimal_text(self.before),
            "after": decimal_text(self.after),
            "value": decimal_text(self.value),
        }

    def to_document(self) -> dict[str, Any]:
        return self.document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> HotFall:
        return cls(
            datetime.fromisoformat(document["ts"]),
            document["wallet"],
            document["asset"],
            document["holder"],
            Decimal(document["before"]),
            Decimal(document["after"]),
            Decimal(document["value"]),
        )


# how many hot-wallet falls within the drain window an exchange keeps as evidence
HOT_FALLS_KEPT = 5
# how many trades of one exchange may wait for the first price of their currency; more
# are refused (a currency that never gets a price must not grow the state without bound)
AWAITING_TRADES_KEPT = 1000
