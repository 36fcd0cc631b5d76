"""The state of one exchange: holdings, ledger, trading volume, feeds, rule statuses.

Plain data updated in place by the engine; every change it makes is also
returned to the engine's caller as a journal write, so a driver with durable
storage (the worker's changelog-backed table) can rebuild it after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from monitor.core.events import (
    CustomerLiability,
    FixedOverheads,
    InsurancePolicy,
    OwnFunds,
    ReserveFund,
    Trade,
)
from monitor.core.holdings import Holdings
from monitor.core.money import decimal_text
from monitor.core.peaks import PeakWindow
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


@dataclass(frozen=True, slots=True)
class HotFall:
    """One hot-wallet snapshot that lowered a balance: evidence for ``ops.hot_wallet_drain``."""

    ts: datetime
    wallet: str
    asset: str
    holder: str
    before: Decimal
    after: Decimal
    value: Decimal  # of the quantity that left, at the price of the time (0 unpriced)
    # the JSON form, made once: evidence reads it on every evaluation
    document: dict[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        document = {
            "ts": self.ts.isoformat(),
            "wallet": self.wallet,
            "asset": self.asset,
            "holder": self.holder,
            "before": decimal_text(self.before),
            "after": decimal_text(self.after),
            "value": decimal_text(self.value),
        }
        object.__setattr__(self, "document", document)

    def to_document(self) -> dict[str, Any]:
        return dict(self.document)

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


class ExchangeState:
    """Everything the monitor knows about one exchange.

    ``hot_peaks`` (only with a ``drain_window``, i.e. the ``ops`` pack) is the
    peak of the exchange's hot-wallet value over that window; ``hot_falls`` the
    largest few hot-wallet snapshots within it that lowered a balance (by value).
    """

    def __init__(
        self,
        exchange: str,
        volume_window: timedelta,
        volume_bucket: timedelta,
        seen_ids: int,
        drain_window: timedelta | None = None,
    ) -> None:
        self.exchange = exchange
        self.holdings = Holdings()
        self.ledger = Ledger()
        self.volume = RollingSum(volume_window, volume_bucket)
        self.feeds: dict[str, datetime] = {}
        # the latest evaluation time a restore will bring back (see Engine._evaluate)
        self.restorable_clock: datetime | None = None
        self.rules: dict[str, RuleState] = {}
        self.seen = RecentIds(seen_ids)
        self.hot_peaks = PeakWindow(drain_window) if drain_window is not None else None
        self.hot_falls: list[HotFall] = []
        # trades in a currency market.prices has not priced yet, by currency, with the
        # document each is journalled as: counted in the volume once a price converts them
        self.awaiting: dict[str, list[tuple[Trade, dict[str, Any]]]] = {}

    def awaiting_trades(self) -> int:
        return sum(len(trades) for trades in self.awaiting.values())

    def saw(self, feed: str, moment: datetime) -> bool:
        """Note data of ``feed`` as of ``moment``; whether the feed's time moved."""
        held = self.feeds.get(feed)
        if held is None or moment > held:
            self.feeds[feed] = moment
            return True
        return False

    def record_fall(self, fall: HotFall, horizon: datetime) -> bool:
        """Keep ``fall`` if it is among the largest since ``horizon``; whether the list changed.

        At most :data:`HOT_FALLS_KEPT` falls are kept, so this is O(1).
        """
        kept = [held for held in self.hot_falls if held.ts >= horizon]
        changed = len(kept) != len(self.hot_falls)
        if len(kept) >= HOT_FALLS_KEPT:
            smallest = min(kept, key=lambda held: held.value)
            if smallest.value >= fall.value:
                self.hot_falls = kept
                return changed
            kept.remove(smallest)
        kept.append(fall)
        self.hot_falls = sorted(kept, key=lambda held: held.ts)
        return True

    def trading_volume(self, now: datetime) -> Decimal:
        return self.volume.total(now)
