"""One exchange: its state, its clock and moments, and its judgments (CONTRACT section 8).

An :class:`Exchange` owns everything the monitor knows about one exchange:
holdings, ledger, trading volume, feeds, recent event ids, the hot-wallet peak,
the status of each of its rules, and the prices it is valued at. It applies the
exchange's own records and the price records of the assets it depends on, and
judges itself at every one of its moments:

* Its clock is the newest event time of its records (and of the prices of the
  assets it depends on). A record dated after the clock first closes the open
  moment, which is judged then, and opens its own. A record dated at or before
  the clock is applied and re-opens the newest moment, judged again when it
  closes; its ``as_of`` stays that moment.
* The engine closes a moment too when the input ends, or when the exchange's
  input has been quiet for a while of append time (:mod:`monitor.core.engine`).
* A judgment runs a rule only when an input it reads has changed since it last
  ran, or its deadline has come (see :mod:`monitor.core.rules.base`).
* A new breach is held for its rule's ``breach_for`` of event time before it is
  published, and dropped if the rule recovers within it.

Every change of state is noted by the key it is journalled under, and
:meth:`Exchange.journal_writes` gives each key noted since its last call once, with
its document as it is then: a driver with durable storage asks when it commits and
can rebuild the exchange from what it stored after a restart. What changes on
every record (the clock, a block of seen ids, a volume bucket) costs a set insertion
per record, not a document.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from monitor.core.changes import Outcome, StatusChange, Step, Write
from monitor.core.events import (
    Custody,
    CustomerLiability,
    FixedOverheads,
    InsurancePolicy,
    LedgerEvent,
    OwnFunds,
    Price,
    ReserveFund,
    Trade,
    WalletBalance,
    to_document,
)
from monitor.core.money import MONEY_CONTEXT, ZERO, duration_text, rfc3339
from monitor.core.rules.base import (
    Assessment,
    ExchangeView,
    Explanation,
    Inputs,
    Rule,
    classify,
    feed_limits,
    unknown,
)
from monitor.core.state import (
    AWAITING_TRADES_KEPT,
    HOT_FALLS_KEPT,
    Feed,
    HotFall,
    Ledger,
    RuleState,
    journal,
)
from monitor.core.state.dependents import Dependents
from monitor.core.state.holdings import Holdings
from monitor.core.state.peaks import PeakWindow
from monitor.core.state.prices import PriceTable
from monitor.core.state.recent import RecentIds
from monitor.core.state.valuation import Valuer
from monitor.core.state.windows import RollingSum
from monitor.core.status import Status

# Enum members read on every record (the journal's kinds: on every key a commit writes),
# bound once: Python 3.11 takes 0.1 µs to read a member off its enum class (its
# metaclass's lookup), ten times a module global's.
_OK: Final = Status.OK
_BREACH: Final = Status.BREACH
_UNKNOWN: Final = Status.UNKNOWN
_APPLIED: Final = Outcome.APPLIED
_STALE: Final = Outcome.STALE
_DUPLICATE: Final = Outcome.DUPLICATE
_HOT: Final = Custody.HOT
_TRADES: Final = Feed.TRADES
_WALLETS: Final = Feed.WALLETS
_LEDGER: Final = Feed.LEDGER
_Kind: Final = journal.Kind
_VOLUME_KEY: Final = _Kind.VOLUME
_WALLET_KEY: Final = _Kind.WALLET
_LEDGER_KEY: Final = _Kind.LEDGER
_RULE_KEY: Final = _Kind.RULE
_FEED_KEY: Final = _Kind.FEED
_AWAITING_KEY: Final = _Kind.AWAITING
_CLOCK_KEY: Final = _Kind.CLOCK
_HOTFALLS_KEY: Final = _Kind.HOTFALLS
_SEEN_KEY: Final = _Kind.SEEN
_PEAK_KEY: Final = _Kind.PEAK
_multiply: Final = MONEY_CONTEXT.multiply  # bound once: a C static, compiled
_subtract: Final = MONEY_CONTEXT.subtract
# what the hot-wallet value moves with
_HOT_VALUE_INPUTS: Final = Inputs.WALLETS | Inputs.PRICES
# how many records applied late to one moment its evidence names
LATE_RECORDS_LISTED: Final = 10
# the journal key of the clock, after the exchange (see journal_writes)
_CLOCK: Final[tuple[str, ...]] = (_CLOCK_KEY,)
_HOTFALLS: Final[tuple[str, ...]] = (_HOTFALLS_KEY,)
_TRADES_FEED: Final[tuple[str, ...]] = (_FEED_KEY, Feed.TRADES)


def ledger_slot(entry: LedgerEvent) -> tuple[str, ...]:
    """Where a ledger figure is kept: one per asset, per policy, or one of its type."""
    if type(entry) is CustomerLiability:
        return ("customer_liability", entry.asset)
    if type(entry) is InsurancePolicy:
        return ("insurance_policy", entry.policy_id)
    return (entry.type,)


class Exchange:
    """Everything the monitor knows about one exchange, judged at its own moments."""

    def __init__(
        self,
        exchange: str,
        checks: list[Rule],
        table: PriceTable,
        dependents: Dependents,
        *,
        volume_window: timedelta,
        volume_bucket: timedelta,
        seen_ids: int,
        drain_window: timedelta | None = None,
        guarded: bool = True,
        journal: bool = True,
    ) -> None:
        self.exchange = exchange
        self.journal = journal  # whether to keep what to journal (replay needs none)
        # the journal keys (after the exchange) of the state changed since journal_writes()
        self._dirty: set[tuple[Any, ...]] = set()
        self.holdings = Holdings()
        self.ledger = Ledger()
        self.volume = RollingSum(volume_window, volume_bucket)
        self.volume.journalled = journal
        self.feeds: dict[str, datetime] = {}
        self.rules: dict[str, RuleState] = {rule.id: RuleState() for rule in checks}
        # each rule with its state, the inputs it reads and its direct path, if any
        self._checks = [
            (
                rule,
                self.rules[rule.id],
                rule.reads,
                getattr(rule, "unchanged", None),
                getattr(rule, "quick_ratio", None),
            )
            for rule in checks
        ]
        # how long each rule's feeds may stay silent: asked only by silence(), so found then
        self._limits: dict[str, dict[str, timedelta]] | None = None
        self.seen = RecentIds(seen_ids)
        self.hot_peaks = PeakWindow(drain_window) if drain_window is not None else None
        if self.hot_peaks is not None:
            self.hot_peaks.journalled = journal
        self.hot_falls: list[HotFall] = []
        # trades in a currency no price converts yet, by currency, with the document
        # each is journalled as: counted in the volume once a price converts them
        self.awaiting: dict[str, list[tuple[Trade, dict[str, Any]]]] = {}
        # the prices this exchange is valued at: those in force at its clock
        self.valuer = Valuer(table.reporting_currency)
        self.clock: datetime | None = None
        self.open = False  # the moment at the clock is not judged yet
        self.last_append: float | None = None  # append time of its last record, seconds
        # the engine's quiet-gap heap holds an entry of it (at or before last_append)
        self.quiet_scheduled = False
        self.changed: int = Inputs.ALL  # inputs changed since the last judgment
        self.guarded = guarded
        self._table = table
        self._dependents = dependents
        self._depends: set[str] = set()  # assets and currencies it is valued in
        self._ledger_currencies: set[str] = set()
        # currencies a rule states amounts in itself (MiCA's class minimum in EUR)
        self._rule_currencies = {c for rule in checks for c in getattr(rule, "currencies", ())}
        # assets whose next price (dated after the clock) was taken before it depended on them
        self._future: dict[str, datetime] = {}
        self._late: list[dict[str, str]] = []  # records applied late to the open moment

    # -- records --------------------------------------------------------------------

    def take(
        self,
        event: Trade | WalletBalance | LedgerEvent,
        step: Step,
        appended: float | None = None,
    ) -> None:
        """Apply one of the exchange's own records, appended at ``appended`` (seconds);
        ``step.outcome`` says how it counts."""
        event_id = event.event_id  # read once: a msgspec field is a generic lookup
        if event_id in self.seen:
            step.outcome = _DUPLICATE
            return
        # exact types (the events are final): isinstance() against a msgspec class that is
        # not the event's own asks the metaclass, 1,800 instructions
        if type(event) is Trade:
            self._take_trade(event, step)
        elif type(event) is WalletBalance:
            self._take_wallet(event, step)
        else:
            self._take_ledger(event, step)
        if step.outcome is not _APPLIED:
            return
        self.open = True
        self._appended(appended)
        if self.journal:
            self.seen.add(event_id)
            self._dirty.add(_CLOCK)
        else:
            self.seen.remember(event_id)

    def take_price(
        self,
        price: Price,
        fields: tuple[datetime, str, Decimal],
        step: Step,
        appended: float | None = None,
    ) -> None:
        """A new price of an asset this exchange depends on (the newest of its asset).

        ``fields``: the price's ``ts``, ``asset`` and ``price``, read once by the engine,
        which hands one price to many exchanges (a msgspec field is a generic lookup).
        """
        ts, asset, amount = fields
        self._arrive(ts, step, "price", asset)
        held = self.valuer.latest.get(asset)
        if held is None or ts > held.ts:
            self._revalue(price, ts, asset, amount)
        if self._future:
            self._future.pop(asset, None)
        self.open = True
        self._appended(appended)
        if self.journal:
            self._dirty.add(_CLOCK)

    def _appended(self, appended: float | None) -> None:
        """Its quiet gap runs from its latest record's append time."""
        if appended is not None and (self.last_append is None or appended > self.last_append):
            self.last_append = appended

    # -- moments --------------------------------------------------------------------

    def judge(self, step: Step) -> None:
        """Judge the open moment: every rule whose inputs or deadline call for it."""
        moment = self.clock
        assert moment is not None
        self.open = False
        if self.awaiting:
            self._release()
        if self.changed & _HOT_VALUE_INPUTS:
            self._observe_hot_value(moment)
        late = self._late
        if late:
            self._late = []
        view = ExchangeView(self, self.valuer, moment)
        changed, self.changed = self.changed, 0
        guarded = self.guarded
        for rule, held, reads, unchanged, quick in self._checks:
            before = held.assessment
            if guarded and before is not None and (held.due is None or moment < held.due):
                if not reads & changed:
                    continue  # nothing it reads has changed: its answer is the same
                if unchanged is not None:
                    view.afresh()
                    if unchanged(view, before, changed):
                        # what changed cannot move its answer (the rule says why), but
                        # may bring a deadline nearer: a first trade's age
                        held.due_by(view.due)
                        continue
                if quick is not None and held.pending is None and before.ratio is not None:
                    view.afresh()
                    ratio = quick(view)
                    status = held.status
                    if ratio is not None and (
                        # ok stays ok at or over the warning level, whatever the hysteresis
                        (status is _OK and ratio >= rule.thresholds.warning_below)
                        or rule.thresholds.classify(ratio, status) is status
                    ):
                        # the status stays: its measurement is taken again when read
                        held.due_by(view.due)
                        continue
            view.afresh()
            assessment = rule.assess(view)
            status = classify(assessment, rule.thresholds, held.status)
            due, pending = view.due, held.pending
            if status is _BREACH and held.status is not _BREACH and rule.breach_for:
                if pending is None:
                    pending = moment
                if moment - pending < rule.breach_for:
                    publish_at = pending + rule.breach_for
                    due = publish_at if due is None or publish_at < due else due
                    status = held.status  # held: not a breach until it lasts
                else:
                    assessment = _with_evidence(assessment, breach_since=rfc3339(pending))
                    pending = None
            else:
                pending = None
            held.assessment, held.due = assessment, due
            if status is held.status and pending == held.pending:
                continue
            if status is not held.status:
                held.changes += 1
                if late:
                    assessment = _with_evidence(assessment, late_records=late)
                step.changes.append(
                    StatusChange(
                        self.exchange,
                        rule.id,
                        status,
                        held.status,
                        held.changes,
                        moment,
                        assessment,
                    )
                )
            held.status, held.pending = status, pending
            if self.journal:
                self._dirty.add((_RULE_KEY, rule.id))
        step.evaluated.append(self.exchange)
        if self.journal:
            self._dirty.add(_CLOCK)

    def silence(self, quiet: timedelta, step: Step) -> None:
        """Nothing of the exchange (its records, the prices it is valued at) has come for
        ``quiet`` of the driver's wall time, with nothing left to read (CONTRACT section 8:
        outside the guarantee, on purpose).

        Each rule is asked what its event-time age checks would say had time gone on by
        ``quiet`` from the exchange's clock: a rule reading a feed that would then be
        older than it allows turns ``unknown`` ("feed silent"), as of the clock, and is
        judged again at the exchange's next moment.
        """
        moment = self.clock
        if moment is None:
            return
        if self.open:
            self.judge(step)
        then = moment + quiet
        if self._limits is None:
            self._limits = {rule.id: feed_limits(rule) for rule, *_ in self._checks}
        limits = self._limits
        for rule, held, *_ in self._checks:
            if held.status is _UNKNOWN:
                continue
            silent = next(
                (
                    (feed, last, limit)
                    for feed, limit in limits[rule.id].items()
                    if (last := self._last_of(feed)) is not None and then - last > limit
                ),
                None,
            )
            if silent is None:
                continue
            feed, last, limit = silent
            assessment = unknown(
                f"feed silent: nothing from {self.exchange} for {duration_text(quiet)} of "
                f"wall time, so its {feed} data would be {duration_text(then - last)} old, "
                f"older than the {duration_text(limit)} this rule allows",
                feed=feed,
                last_seen=last.isoformat(),
                silent_seconds=int(quiet.total_seconds()),
            )
            held.changes += 1
            step.changes.append(
                StatusChange(
                    self.exchange,
                    rule.id,
                    _UNKNOWN,
                    held.status,
                    held.changes,
                    moment,
                    assessment,
                )
            )
            # judged again at the next moment, whatever changed
            held.status, held.pending, held.assessment, held.due = (
                _UNKNOWN,
                None,
                assessment,
                moment,
            )
            if self.journal:
                self._dirty.add((_RULE_KEY, rule.id))

    def _last_of(self, feed: str) -> datetime | None:
        """The event time of the newest figure of ``feed`` (prices: the oldest held asset's)."""
        if feed == Feed.PRICES:
            oldest = self.holdings.oldest_price()
            return None if oldest is None else oldest[0]
        return self.feeds.get(feed)

    def _arrive(
        self, moment: datetime, step: Step, record: str, key: str, subkey: str = ""
    ) -> None:
        """A record dated ``moment`` is applied: a later one opens a moment of its own
        (closing the open one), an earlier one is late and re-opens the newest. ``key``
        and ``subkey`` name the record in the evidence of a late one (two arguments, not
        ``*key``: a tuple made at every record for the rare late one)."""
        clock = self.clock
        if clock is None or moment > clock:
            self._enter(moment, step)
        elif moment < clock and len(self._late) < LATE_RECORDS_LISTED:
            named = f"{key}/{subkey}" if subkey else key
            self._late.append({"record": record, "key": named, "ts": rfc3339(moment)})

    def _enter(self, moment: datetime, step: Step) -> None:
        """Move the clock on to ``moment``, judging the moment it closes first."""
        if self.open:
            self.judge(step)
        self.clock = moment
        if self._future:
            self._catch_up(moment)

    def journal_writes(self) -> list[Write]:
        """The journal entries of the state changed since the last call: each key once,
        with its document as it is now (None: the key is gone), in key order.

        The clock entry holds whether its moment is open, the latest append time and the
        records applied late to the open moment, so a restored exchange's open moment is
        judged after the same quiet gap, with the same evidence.
        """
        dirty = self._dirty
        if not dirty:
            return []
        self._dirty = set()
        name = self.exchange
        for bucket in self.volume.evicted():
            dirty.add((_VOLUME_KEY, bucket))
        writes: list[Write] = []
        add = writes.append
        for key in sorted(dirty):
            kind = key[0]
            if kind == _CLOCK_KEY:
                if self.clock is not None:
                    clock = rfc3339(self.clock)
                    add(journal.clock(name, clock, self.open, self.last_append, self._late))
            elif kind == _RULE_KEY:
                add(journal.rule(name, key[1], self.rules[key[1]]))
            elif kind == _VOLUME_KEY:
                amount = self.volume.held(key[1])
                add(
                    journal.gone(name, key)
                    if amount is None
                    else journal.volume(name, key[1], amount)
                )
            elif kind == _WALLET_KEY:
                add(journal.wallet(name, self.holdings.snapshots[key[1], key[2]]))
            elif kind == _LEDGER_KEY:
                figure = self.ledger_in(key[1:])
                assert figure is not None
                add(journal.ledger(name, key[1:], figure))
            elif kind == _FEED_KEY:
                add(journal.feed(name, key[1], self.feeds[key[1]]))
            elif kind == _AWAITING_KEY:
                trades = self.awaiting.get(key[1])
                documents = None if trades is None else [document for _, document in trades]
                add(
                    journal.gone(name, key)
                    if documents is None
                    else journal.awaiting(name, key[1], documents)
                )
            elif kind == _HOTFALLS_KEY:
                add(journal.hotfalls(name, self.hot_falls))
        for block, ids in self.seen.journal():
            if ids is None:
                add(journal.gone(name, (_SEEN_KEY, block)))
            else:
                add(journal.seen(name, block, ids))
        if self.hot_peaks is not None:
            written, dropped = self.hot_peaks.journal()
            writes.extend(journal.gone(name, (_PEAK_KEY, seq)) for seq in dropped)
            writes.extend(journal.peak(name, level) for level in written)
        return writes

    # -- trades ---------------------------------------------------------------------

    def _take_trade(self, trade: Trade, step: Step) -> None:
        if self.clock is not None and trade.ts <= self.clock:
            # the window ends at the clock: a trade it has left is stale
            self.volume.total(self.clock)
            if not self.volume.admits(trade.ts):
                step.outcome = _STALE
                return
        notional = self._to_reporting(trade)
        if notional is None and self.awaiting_trades() >= AWAITING_TRADES_KEPT:
            step.outcome, step.error = (
                Outcome.INVALID,
                (
                    f"currency: no market.prices price of {trade.currency} converts the "
                    f"notional into {self.valuer.reporting_currency}, and "
                    f"{AWAITING_TRADES_KEPT} trades of {self.exchange} already wait for a price"
                ),
            )
            return
        self._arrive(trade.ts, step, "trade", trade.event_id)
        step.outcome = _APPLIED
        self.changed |= Inputs.VOLUME
        if notional is None:
            self._hold_trade(trade)
        else:
            bucket = self.volume.add(trade.ts, notional)
            assert bucket is not None  # admitted above
            if self.journal:
                self._dirty.add((_VOLUME_KEY, bucket))
        if self.saw(_TRADES, trade.ts) and self.journal:
            self._dirty.add(_TRADES_FEED)

    def _to_reporting(self, trade: Trade) -> Any:
        """The trade's notional in the reporting currency, at the price of its own time."""
        if trade.currency == self.valuer.reporting_currency:
            return trade.notional
        price = self._table.at_or_oldest(trade.currency, trade.ts)
        return None if price is None else _multiply(trade.notional, price.price)

    def _hold_trade(self, trade: Trade) -> None:
        """Keep a trade no price converts yet, to count it once one does (:meth:`_release`).

        Input topics are read side by side, so a trade may come before the first
        price of its currency; refusing it would understate the volume the floor
        grows with. Until it is counted, ``jp.liability_reserve`` is ``unknown``.
        """
        held = self.awaiting.setdefault(trade.currency, [])
        held.append((trade, to_document(trade)))
        self.depend(trade.currency)  # its first price is a moment of this exchange
        if self.journal:
            self._dirty.add((_AWAITING_KEY, trade.currency))

    def _release(self) -> None:
        """Count the held trades whose currency has a price now, each at its own time's."""
        priced = [currency for currency in self.awaiting if self._table.latest(currency)]
        if priced:
            self.changed |= Inputs.VOLUME  # the volume the floor grows with is whole again
        for currency in priced:
            buckets = set()
            for trade, _ in self.awaiting.pop(currency):
                notional = self._to_reporting(trade)
                assert notional is not None
                bucket = self.volume.add(trade.ts, notional)  # None: the window has left it
                if bucket is not None:
                    buckets.add(bucket)
            if self.journal:
                self._dirty.update((_VOLUME_KEY, b) for b in buckets)
                self._dirty.add((_AWAITING_KEY, currency))
        if priced:
            self._drop_dependencies()

    def awaiting_trades(self) -> int:
        return sum(len(trades) for trades in self.awaiting.values())

    def trading_volume(self, now: datetime) -> Any:
        return self.volume.total(now)

    # -- wallets --------------------------------------------------------------------

    def _take_wallet(self, wallet: WalletBalance, step: Step) -> None:
        if not self.holdings.newer_than_held(wallet):
            step.outcome = _STALE
            return
        step.outcome = _APPLIED
        self._arrive(wallet.ts, step, "wallet_balance", wallet.wallet, wallet.asset)
        if self.holdings.restate(wallet):
            # the balance held, stated again (most snapshots): only the feed's time moves
            self.saw(_WALLETS, wallet.ts)
            self.changed |= Inputs.WALLETS
        else:
            self._note_hot_fall(wallet)  # a fall lowers a snapshot held: its asset is priced
            self.put_wallet(wallet)
        if self.journal:
            self._dirty.add((_WALLET_KEY, wallet.wallet, wallet.asset))

    def put_wallet(self, wallet: WalletBalance) -> None:
        """Take a snapshot (newer than the one held) into the holdings and their totals."""
        self.depend(wallet.asset)
        self.holdings.replace(wallet, self.valuer.prices)
        price = self.valuer.latest.get(wallet.asset)
        if price is not None:
            self.holdings.priced_at(wallet.asset, price.ts)
        self.saw(_WALLETS, wallet.ts)
        self.changed |= Inputs.WALLETS

    def _note_hot_fall(self, wallet: WalletBalance) -> None:
        """Keep a snapshot that lowers a hot balance as evidence of a drain."""
        if self.hot_peaks is None:
            return
        held = self.holdings.snapshots.get((wallet.wallet, wallet.asset))
        before = held.balance if held is not None and held.custody is _HOT else ZERO
        after = wallet.balance if wallet.custody is _HOT else ZERO
        if after >= before:
            return
        price = self.valuer.prices.get(wallet.asset, ZERO)
        value = _multiply(_subtract(before, after), price)
        fall = HotFall(wallet.ts, wallet.wallet, wallet.asset, wallet.holder, before, after, value)
        assert self.clock is not None
        if self.record_fall(fall, self.clock - self.hot_peaks.window) and self.journal:
            self._dirty.add(_HOTFALLS)

    def record_fall(self, fall: HotFall, horizon: datetime) -> bool:
        """Keep ``fall`` if it is among the largest since ``horizon``; whether the list changed.

        At most :data:`~monitor.core.state.HOT_FALLS_KEPT` falls are kept, so this is O(1).
        """
        kept = [held for held in self.hot_falls if held.ts >= horizon]
        changed = len(kept) != len(self.hot_falls)
        if len(kept) >= HOT_FALLS_KEPT:
            smallest = min(kept, key=lambda held: held.value)
            if smallest.value >= fall.value:
                self.hot_falls = kept
                return changed
            kept.remove(smallest)
        if kept and fall.ts < kept[-1].ts:
            kept.append(fall)
            kept.sort(key=lambda held: held.ts)  # stable: the same order as before
        else:
            kept.append(fall)  # in time order already, as falls mostly come
        self.hot_falls = kept
        return True

    def _observe_hot_value(self, moment: datetime) -> None:
        """Move the hot-value peak window to the moment judged, with the value then."""
        peaks = self.hot_peaks
        if peaks is None or not self.holdings.snapshots:
            return
        peaks.observe(moment, self.holdings.hot_value())

    # -- ledger ---------------------------------------------------------------------

    def _take_ledger(self, entry: LedgerEvent, step: Step) -> None:
        held = self.held_ledger(entry)
        if held is not None and held.ts >= entry.ts:
            step.outcome = _STALE
            return
        step.outcome = _APPLIED
        slot = ledger_slot(entry)
        self._arrive(entry.ts, step, entry.type, slot[0], slot[1] if len(slot) > 1 else "")
        self.put_ledger(entry)
        if self.journal:
            self._dirty.add((_LEDGER_KEY, *ledger_slot(entry)))

    def ledger_in(self, slot: tuple[str, ...]) -> LedgerEvent | None:
        """The ledger figure held in ``slot`` (see :func:`ledger_slot`)."""
        ledger = self.ledger
        kind = slot[0]
        if kind == "customer_liability":
            return ledger.liabilities.get(slot[1])
        if kind == "insurance_policy":
            return ledger.insurance.get(slot[1])
        figure: LedgerEvent | None = getattr(ledger, kind)
        return figure

    def held_ledger(self, entry: LedgerEvent) -> LedgerEvent | None:
        """The figure held in the slot ``entry`` would go to."""
        return self.ledger_in(ledger_slot(entry))

    def put_ledger(self, entry: LedgerEvent) -> None:
        """Take a ledger figure (newer than the one held in its slot)."""
        ledger = self.ledger
        held = self.held_ledger(entry)
        if held is not None and held.ts >= entry.ts:
            return
        if type(entry) is CustomerLiability:
            ledger.liabilities[entry.asset] = entry
            self.depend(entry.asset)
            self.holdings.owe(
                entry.asset, entry.amount, entry.ts, self.valuer.prices.get(entry.asset)
            )
        elif type(entry) is InsurancePolicy:
            ledger.insurance[entry.policy_id] = entry
        elif type(entry) is ReserveFund:
            ledger.reserve_fund = entry
        elif type(entry) is OwnFunds:
            ledger.own_funds = entry
        elif type(entry) is FixedOverheads:
            ledger.fixed_overheads = entry
        currencies = {figure.currency for figure in _currency_figures(ledger)}
        currencies |= self._rule_currencies
        currencies.discard(self.valuer.reporting_currency)
        if currencies != self._ledger_currencies:
            for currency in currencies - self._ledger_currencies:
                self.depend(currency)
            dropped = self._ledger_currencies - currencies
            self._ledger_currencies = currencies
            if dropped:
                self._drop_dependencies()
        self.saw(_LEDGER, entry.ts)
        self.changed |= Inputs.LEDGER

    # -- prices ---------------------------------------------------------------------

    @property
    def depends(self) -> AbstractSet[str]:
        """The assets and currencies the exchange is valued in (their prices are its input)."""
        return self._depends

    def depend(self, asset: str) -> None:
        """From now on this exchange is valued in ``asset``: take its price in force."""
        if asset in self._depends or asset == self.valuer.reporting_currency:
            return
        self._depends.add(asset)
        self._dependents.add(asset, self.exchange)
        moment = self.clock
        if moment is None:
            return
        price = self._table.at(asset, moment)
        if price is not None:
            self._revalue(price, price.ts, asset, price.price)
        later = self._table.next_after(asset, moment)
        if later is not None:
            self._future[asset] = later

    def _catch_up(self, moment: datetime) -> None:
        """Value at ``moment`` the assets whose next price came before they were needed."""
        for asset, stated in list(self._future.items()):
            if stated > moment:
                continue
            price = self._table.at(asset, moment)
            if price is not None:
                self._revalue(price, price.ts, asset, price.price)
            later = self._table.next_after(asset, moment)
            if later is None:
                del self._future[asset]
            else:
                self._future[asset] = later

    def _revalue(self, price: Price, ts: datetime, asset: str, amount: Decimal) -> None:
        """Value ``asset`` at ``price`` (its fields ``ts``, ``asset`` and ``price``, read
        once by the caller: a msgspec struct's field costs a generic attribute lookup)."""
        old = self.valuer.replace(price, asset, amount)
        self.holdings.reprice(asset, amount, ts)
        changed = Inputs.PRICES
        if old is None:
            changed |= Inputs.WALLETS  # what was unpriced can be valued now
        if asset in self._ledger_currencies:
            changed |= Inputs.LEDGER
        if asset in self.awaiting:
            changed |= Inputs.VOLUME
        self.changed |= changed

    def _drop_dependencies(self) -> None:
        """Stop depending on prices its figures no longer need.

        So an exchange depends on the same prices as one rebuilt from its journal,
        and is judged at the same moments, whatever its history.
        """
        needed = set(self.holdings.assets) | set(self.ledger.liabilities) | set(self.awaiting)
        needed |= self._ledger_currencies
        for asset in self._depends - needed:
            self._depends.discard(asset)
            self._dependents.discard(asset, self.exchange)
            self._future.pop(asset, None)
            self.valuer.forget(asset)

    def forget(self) -> None:
        """This exchange leaves the engine: stop its price dependencies."""
        for asset in self._depends:
            self._dependents.discard(asset, self.exchange)

    # -- rebuilding from the journal -------------------------------------------------

    def rebuild(self, entries: list[journal.Entry]) -> None:
        """Put back the state of the journal's entries: the clock first, so the prices
        the exchange is valued at are those in force then."""
        is_open = False
        for entry in entries:
            if entry.kind is _CLOCK_KEY:
                self.clock, is_open = entry.moment(), bool(entry.document["open"])
                self.last_append = entry.document.get("appended")
                self._late = list(entry.document.get("late", ()))
        if self.clock is None:  # a journal of an older version: the newest time it holds
            times = [
                entry.moment()
                for entry in entries
                if entry.kind in (_WALLET_KEY, _LEDGER_KEY, _FEED_KEY)
            ]
            self.clock = max(times) if times else None
        for entry in entries:
            self._put_back(entry)
        if self.hot_peaks is not None:
            self.hot_peaks.journal()  # what was put back is journalled already
        self.volume.evicted()
        self.seen.journal()
        self._dirty.clear()
        self.open = is_open
        self.changed = Inputs.ALL  # every rule runs at its next judgment

    def _put_back(self, entry: journal.Entry) -> None:
        kind, parts = entry.kind, entry.parts
        if kind is _WALLET_KEY:
            wallet = entry.wallet()
            if self.holdings.newer_than_held(wallet):
                self.put_wallet(wallet)
        elif kind is _LEDGER_KEY:
            self.put_ledger(entry.ledger())
        elif kind is _VOLUME_KEY:
            self.volume.restore(int(parts[0]), Decimal(entry.document["amount"]))
            if "last" in entry.document:
                self.seen.restore_one(entry.document["last"], int(entry.document["n"]))
        elif kind is _FEED_KEY:
            self.saw(parts[0], entry.moment())
        elif kind is _AWAITING_KEY:
            self.awaiting[parts[0]] = entry.trades()
            self.depend(parts[0])
        elif kind is _SEEN_KEY:
            ids = entry.document["ids"]
            self.seen.restore({event_id: int(n) for event_id, n in ids.items()})
        elif kind is _RULE_KEY:
            held = self.rules.get(parts[0])
            if held is not None:  # a rule the policy still applies
                restored = entry.rule_state()
                held.status, held.changes = restored.status, restored.changes
                held.pending = restored.pending
        elif kind is _PEAK_KEY:
            if self.hot_peaks is not None:
                self.hot_peaks.restore(entry.level())
        elif kind is _HOTFALLS_KEY:
            self.hot_falls = entry.falls()

    # -- small pieces ---------------------------------------------------------------

    def saw(self, feed: str, moment: datetime) -> bool:
        """Note data of ``feed`` as of ``moment``; whether the feed's time moved."""
        held = self.feeds.get(feed)
        if held is None or moment > held:
            self.feeds[feed] = moment
            return True
        return False


def _currency_figures(
    ledger: Ledger,
) -> Iterable[ReserveFund | InsurancePolicy | OwnFunds | FixedOverheads]:
    """The ledger figures stated in a currency."""
    yield from ledger.insurance.values()
    for figure in (ledger.reserve_fund, ledger.own_funds, ledger.fixed_overheads):
        if figure is not None:
            yield figure


def _with_evidence(assessment: Assessment, **added: Any) -> Assessment:
    """The assessment with more evidence: records applied late, when a held breach began."""

    def explain() -> Explanation:
        return assessment.reason, {**assessment.evidence, **added}

    return Assessment(
        assessment.required,
        assessment.available,
        assessment.ratio,
        assessment.shortfall,
        explain,
        ratio_ahead=assessment.ratio_ahead,
    )
