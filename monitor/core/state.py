"""The state of one exchange: holdings, ledger, trading volume, feeds, rule statuses.

Plain data updated in place by the engine; every change it makes is also
returned to the engine's caller as a journal write, so a driver with durable
storage (the worker's changelog-backed table) can rebuild it after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from monitor.core.events import (
    CustomerLiability,
    FixedOverheads,
    InsurancePolicy,
    OwnFunds,
    ReserveFund,
)
from monitor.core.holdings import Holdings
from monitor.core.recent import RecentIds
from monitor.core.rules.base import Assessment
from monitor.core.status import Status
from monitor.core.windows import RollingSum


class Feed:
    """The names of the input feeds whose age the rules and metrics watch."""

    TRADES = "trades"
    WALLETS = "wallet_balances"
    LEDGER = "ledger"
    PRICES = "prices"


@dataclass(slots=True)
class RuleState:
    """The last status of one rule, how many changes it has had, and its last assessment."""

    status: Status = Status.UNKNOWN
    changes: int = 0
    assessment: Assessment | None = None


@dataclass(slots=True)
class Ledger:
    """The exchange's back-office figures, each the newest snapshot."""

    liabilities: dict[str, CustomerLiability] = field(default_factory=dict)
    reserve_fund: ReserveFund | None = None
    insurance: dict[str, InsurancePolicy] = field(default_factory=dict)
    own_funds: OwnFunds | None = None
    fixed_overheads: FixedOverheads | None = None


class ExchangeState:
    """Everything the monitor knows about one exchange."""

    def __init__(
        self, exchange: str, volume_window: timedelta, volume_bucket: timedelta, seen_ids: int
    ) -> None:
        self.exchange = exchange
        self.holdings = Holdings()
        self.ledger = Ledger()
        self.volume = RollingSum(volume_window, volume_bucket)
        self.feeds: dict[str, datetime] = {}
        self.rules: dict[str, RuleState] = {}
        self.seen = RecentIds(seen_ids)

    def saw(self, feed: str, moment: datetime) -> None:
        held = self.feeds.get(feed)
        if held is None or moment > held:
            self.feeds[feed] = moment

    def trading_volume(self, now: datetime) -> Decimal:
        return self.volume.total(now)
