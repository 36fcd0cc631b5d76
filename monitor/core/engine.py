"""The engine: applies input events to per-exchange state and evaluates the rules.

The engine knows nothing of Kafka. A driver (the worker, ``replay``) hands it
decoded events with :meth:`Engine.take`, which updates the state and marks the
exchanges it affected dirty, and calls :meth:`Engine.settle` to evaluate the
dirty exchanges once per batch of events (``replay`` settles whenever event
time moves on, the worker a few times a second). Each call returns a
:class:`Step`: the outcome the event is counted under, the status changes to
publish, and the journal writes that let a driver with durable storage rebuild
the state later with :meth:`Engine.restore`.

Journal keys are JSON lists: ``["price", asset]`` for prices (global), and for
everything else the exchange id second, so a driver can place each entry on the
partition of its exchange: ``wallet``, ``ledger``, ``volume`` (one per bucket),
``feed`` (time of the newest trade), ``seen`` (event ids, in numbered blocks),
``rule``, ``peak``, ``hotfalls`` and ``clock`` (the time the exchange was last
evaluated at).

Cost per event: an exchange event touches one exchange; a price event
revalues only the exchanges that hold the asset or keep ledger figures in it.
Neither sums over wallets. A settle evaluates each dirty exchange's rules on
running totals, once, however many events of the batch touched it.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from monitor.core.events import (
    Custody,
    CustomerLiability,
    Event,
    FixedOverheads,
    InsurancePolicy,
    LedgerEvent,
    OwnFunds,
    Price,
    ReserveFund,
    Topic,
    Trade,
    WalletBalance,
    from_document,
    to_document,
)
from monitor.core.money import MONEY_CONTEXT, ZERO, decimal_text
from monitor.core.peaks import Level
from monitor.core.policy import ExchangePolicy, Policy
from monitor.core.rules import (
    ColdStorage,
    CompensationCover,
    HotWalletDrain,
    HotWalletGuarantee,
    LiabilityReserve,
    MicaOwnFunds,
    Rule,
    Segregation,
)
from monitor.core.rules.base import Assessment, ExchangeView, classify
from monitor.core.state import (
    AWAITING_TRADES_KEPT,
    ExchangeState,
    Feed,
    HotFall,
    Ledger,
    RuleState,
)
from monitor.core.status import Status
from monitor.core.valuation import Valuer

# Namespace of the deterministic ids of status changes (uuid5 of the change's identity).
CHANGE_NAMESPACE = uuid.UUID("6f1c2a52-3b0e-5d1c-9c61-2f7a1d0b9e41")
DEFAULT_SEEN_IDS = 20_000
# trading volume of an exchange whose packs set no window (reported, not judged)
DEFAULT_VOLUME_WINDOW = timedelta(days=1)
DEFAULT_VOLUME_BUCKET = timedelta(hours=1)

Write = tuple[str, dict[str, Any] | None]


class Outcome(StrEnum):
    """How an input message is accounted for (``reserve_monitor_events_total``)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One rule of one exchange moved from ``previous`` to ``status``."""

    exchange: str
    rule: str
    status: Status
    previous: Status
    sequence: int
    as_of: datetime
    assessment: Assessment

    @property
    def id(self) -> str:
        """The same change, recomputed after a restart or in a replay, has the same id."""
        name = f"{self.exchange}/{self.rule}/{self.sequence}/{self.previous}/{self.status}"
        return str(uuid.uuid5(CHANGE_NAMESPACE, name))

    @property
    def touches_breach(self) -> bool:
        return Status.BREACH in (self.status, self.previous)


@dataclass(slots=True)
class Step:
    """What one call of the engine did."""

    outcome: Outcome | None = None
    error: str | None = None
    changes: list[StatusChange] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)


@lru_cache(maxsize=1 << 16)  # the same few keys per exchange are written again and again
def journal_key(*parts: str | int) -> str:
    """The key of one journalled piece of state, e.g. ``["wallet","dmm","hot-1","BTC"]``."""
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


def rules_for(policy: ExchangePolicy) -> list[Rule]:
    """The rules an exchange's packs apply, in a fixed order: jp, hk, eu, ops.

    The order does not depend on the order the packs are listed in, so the same
    exchange yields its status changes in the same order under any policy file.
    """
    rules: list[Rule] = []
    jp, hk, eu, ops = policy.jp, policy.hk, policy.eu, policy.ops
    if jp is not None:
        rules.append(LiabilityReserve(jp.liability_reserve))
        rules.append(ColdStorage("jp.cold_storage", jp.cold_storage))
        rules.append(HotWalletGuarantee(jp.hot_wallet_guarantee))
        rules.append(Segregation(jp.segregation))
    if hk is not None:
        rules.append(ColdStorage("hk.cold_storage", hk.cold_storage))
        rules.append(CompensationCover(hk.compensation_cover))
    if eu is not None:
        rules.append(MicaOwnFunds(eu.mica_own_funds, eu.service_class))
    if ops is not None:
        rules.append(HotWalletDrain(ops.hot_wallet_drain))
    return rules


def _currency_figures(
    ledger: Ledger,
) -> Iterable[ReserveFund | InsurancePolicy | OwnFunds | FixedOverheads]:
    """The ledger figures stated in a currency."""
    yield from ledger.insurance.values()
    for figure in (ledger.reserve_fund, ledger.own_funds, ledger.fixed_overheads):
        if figure is not None:
            yield figure


def _ledger_slot(event: LedgerEvent) -> tuple[str, ...]:
    if isinstance(event, CustomerLiability):
        return ("customer_liability", event.asset)
    if isinstance(event, InsurancePolicy):
        return ("insurance_policy", event.policy_id)
    return (event.type,)


class Engine:
    """Reserve adequacy of every exchange it has seen, kept current event by event."""

    def __init__(self, policy: Policy, *, seen_ids: int = DEFAULT_SEEN_IDS) -> None:
        self.policy = policy
        self.valuer = Valuer(policy.reporting_currency)
        self.exchanges: dict[str, ExchangeState] = {}
        self.clock: datetime | None = None
        self._seen_ids = seen_ids
        self._rules: dict[int, list[Rule]] = {}
        # asset or currency -> exchanges whose figures are valued in it
        self._dependents: defaultdict[str, set[str]] = defaultdict(set)
        # exchanges taken events have changed since the last settle
        self._dirty: set[str] = set()

    # -- driving -----------------------------------------------------------------

    def apply(self, event: Event) -> Step:
        """Take one event and evaluate what it affected at once: :meth:`take`, :meth:`settle`."""
        step = self.take(event)
        settled = self.settle()
        step.changes, step.evaluated = settled.changes, settled.evaluated
        step.writes.extend(settled.writes)
        return step

    def take(self, event: Event) -> Step:
        """Apply one decoded input event to the state; the exchanges it affects become dirty.

        Nothing is evaluated here: :meth:`settle` evaluates every dirty exchange
        once, however many events dirtied it, so a driver that takes a batch of
        events pays one evaluation per exchange per batch. Only an applied event
        moves the clock: a duplicate, a stale or an invalid one changes nothing,
        not even the time every figure's age is judged at.
        """
        if isinstance(event, Price):
            return self._apply_price(event)
        known = event.exchange in self.exchanges
        state = self.state_of(event.exchange)
        if event.event_id in state.seen:
            return Step(Outcome.DUPLICATE)
        step = Step()
        if isinstance(event, Trade):
            self._apply_trade(state, event, step)
        elif isinstance(event, WalletBalance):
            self._apply_wallet(state, event, step)
        else:
            self._apply_ledger(state, event, step)
        if step.outcome is not Outcome.APPLIED:
            if not known:  # nothing of it is journalled: a restored engine would not have it
                del self.exchanges[event.exchange]
            return step
        block, ids, dropped = state.seen.add(event.event_id)
        step.writes.append((journal_key("seen", state.exchange, block), {"ids": ids}))
        if dropped is not None:
            step.writes.append((journal_key("seen", state.exchange, dropped), None))
        self._dirty.add(state.exchange)
        return step

    def settle(self) -> Step:
        """Evaluate every exchange dirtied since the last call, in exchange order."""
        step = Step()
        dirty, self._dirty = self._dirty, set()
        for exchange in sorted(dirty):
            state = self.exchanges.get(exchange)
            if state is not None:
                self._evaluate(state, step)
        return step

    def tick(self, now: datetime) -> Step:
        """Let time pass to ``now`` and re-evaluate every exchange (windows, staleness)."""
        self._advance(now)
        self._dirty.update(self.exchanges)
        return self.settle()

    def restore(self, key: str, document: dict[str, Any]) -> None:
        """Put back one journalled piece of state (any order; later writes win).

        The engine is whole again once every surviving entry has been restored;
        no further call is needed. Its clock is the newest time any entry holds.
        """
        kind, *parts = json.loads(key)
        if kind == "price":
            price = from_document(Topic.PRICES, document)
            assert isinstance(price, Price)
            if self.valuer.newer_than_held(price):
                self._take_price(price)
            self._advance(price.ts)
            return
        state = self.state_of(parts[0])
        if kind == "wallet":
            wallet = from_document(Topic.WALLET_BALANCES, document)
            assert isinstance(wallet, WalletBalance)
            if state.holdings.newer_than_held(wallet):
                self._take_wallet(state, wallet)
            self._advance(wallet.ts)
        elif kind == "ledger":
            entry = from_document(Topic.LEDGER, document)
            assert not isinstance(entry, Trade | WalletBalance | Price)
            self._take_ledger(state, entry)
            self._advance(entry.ts)
        elif kind == "volume":
            state.volume.restore(int(parts[1]), Decimal(document["amount"]))
            if "last" in document:
                state.seen.restore_one(document["last"], int(document["n"]))
        elif kind == "feed":
            state.saw(parts[1], datetime.fromisoformat(document["ts"]))
        elif kind == "clock":
            moment = datetime.fromisoformat(document["ts"])
            self._advance(moment)
            if state.restorable_clock is None or moment > state.restorable_clock:
                state.restorable_clock = moment
        elif kind == "awaiting":
            held = []
            for held_document in document["trades"]:
                trade = from_document(Topic.TRADES, held_document)
                assert isinstance(trade, Trade)
                held.append((trade, held_document))
                self._advance(trade.ts)
            state.awaiting[parts[1]] = held
            self._dependents[parts[1]].add(state.exchange)
            self._dirty.add(state.exchange)  # a price held already releases them
        elif kind == "seen":
            state.seen.restore({event_id: int(n) for event_id, n in document["ids"].items()})
        elif kind == "rule":
            state.rules[parts[1]] = RuleState(Status(document["status"]), document["changes"])
        elif kind == "peak":
            if state.hot_peaks is not None:
                state.hot_peaks.restore(Level.from_document(int(parts[1]), document))
        elif kind == "hotfalls":
            state.hot_falls = [HotFall.from_document(fall) for fall in document["falls"]]
        else:
            raise ValueError(f"unknown journal key {key!r}")

    # -- reading -----------------------------------------------------------------

    def state_of(self, exchange: str) -> ExchangeState:
        state = self.exchanges.get(exchange)
        if state is None:
            policy = self.policy.for_exchange(exchange)
            jp, ops = policy.jp, policy.ops
            window, bucket = (
                (jp.liability_reserve.volume_window, jp.liability_reserve.volume_bucket)
                if jp is not None
                else (DEFAULT_VOLUME_WINDOW, DEFAULT_VOLUME_BUCKET)
            )
            drain_window = ops.hot_wallet_drain.window if ops is not None else None
            state = ExchangeState(exchange, window, bucket, self._seen_ids, drain_window)
            self.exchanges[exchange] = state
        return state

    def rules_of(self, exchange: str) -> list[Rule]:
        policy = self.policy.for_exchange(exchange)
        rules = self._rules.get(id(policy))
        if rules is None:
            rules = self._rules[id(policy)] = rules_for(policy)
        return rules

    def forget(self, exchanges: Iterable[str]) -> None:
        """Drop the state of exchanges this engine no longer owns (partitions moved away)."""
        for exchange in exchanges:
            self.exchanges.pop(exchange, None)
            self._dirty.discard(exchange)
            for dependents in self._dependents.values():
                dependents.discard(exchange)

    # -- the parts ---------------------------------------------------------------

    def _advance(self, moment: datetime) -> None:
        if self.clock is None or moment > self.clock:
            self.clock = moment

    def _apply_price(self, price: Price) -> Step:
        held = self.valuer.latest.get(price.asset)
        if held is not None and held.event_id == price.event_id:
            return Step(Outcome.DUPLICATE)
        if price.currency != self.valuer.reporting_currency:
            return Step(
                Outcome.INVALID,
                f"currency: prices must be in the reporting currency "
                f"{self.valuer.reporting_currency}, not {price.currency}",
            )
        if not self.valuer.newer_than_held(price):
            return Step(Outcome.STALE)
        step = Step(Outcome.APPLIED)
        self._advance(price.ts)
        self._take_price(price)
        step.writes.append((journal_key("price", price.asset), to_document(price)))
        self._dirty.update(self._dependents.get(price.asset, ()))
        return step

    def _take_price(self, price: Price) -> None:
        old = self.valuer.replace(price)
        for exchange in self._dependents.get(price.asset, ()):
            holdings = self.exchanges[exchange].holdings
            holdings.reprice(price.asset, old, price.price)
            holdings.priced_at(price.asset, price.ts)

    def _apply_trade(self, state: ExchangeState, trade: Trade, step: Step) -> None:
        if self.clock is not None:
            # the window ends at the clock, not at the newest trade: a trade the window
            # has left is stale, whether or not a newer trade (or a restart) came between
            state.volume.total(self.clock)
        notional = self.valuer.to_reporting(trade.notional, trade.currency)
        if notional is None:
            self._hold_trade(state, trade, step)
            return
        bucket = state.volume.add(trade.ts, notional)
        if bucket is None:
            step.outcome = Outcome.STALE
            return
        step.outcome = Outcome.APPLIED
        self._advance(trade.ts)
        step.writes.append(
            (
                journal_key("volume", state.exchange, bucket),
                # the trade's id rides with the sum it joined: a crash between this entry
                # and the id's own cannot make a restored engine count the trade twice
                {
                    "amount": decimal_text(state.volume.amount(bucket)),
                    "last": trade.event_id,
                    "n": state.seen.upcoming,
                },
            )
        )
        step.writes.extend(
            (journal_key("volume", state.exchange, b), None) for b in state.volume.evicted()
        )
        self._saw_trade(state, trade, step)

    def _hold_trade(self, state: ExchangeState, trade: Trade, step: Step) -> None:
        """Keep a trade no price converts yet, to count it once one does (:meth:`_release`).

        Input topics are read side by side, so a trade may come before the first
        price of its currency; refusing it would understate the volume the floor
        grows with. Until it is counted, ``jp.liability_reserve`` is ``unknown``.
        """
        if not state.volume.admits(trade.ts):
            step.outcome = Outcome.STALE
            return
        if state.awaiting_trades() >= AWAITING_TRADES_KEPT:
            step.outcome, step.error = (
                Outcome.INVALID,
                (
                    f"currency: no market.prices price of {trade.currency} converts the "
                    f"notional into {self.valuer.reporting_currency}, and "
                    f"{AWAITING_TRADES_KEPT} trades of {state.exchange} already wait for a price"
                ),
            )
            return
        step.outcome = Outcome.APPLIED
        self._advance(trade.ts)
        held = state.awaiting.setdefault(trade.currency, [])
        held.append((trade, to_document(trade)))
        self._dependents[trade.currency].add(state.exchange)  # its price makes it dirty
        step.writes.append(
            (
                journal_key("awaiting", state.exchange, trade.currency),
                {"trades": [document for _, document in held]},
            )
        )
        self._saw_trade(state, trade, step)

    def _release(self, state: ExchangeState, step: Step) -> None:
        """Count the held trades whose currency has a price now, at that price."""
        priced = [currency for currency in state.awaiting if currency in self.valuer.prices]
        for currency in priced:
            buckets = set()
            for trade, _ in state.awaiting.pop(currency):
                notional = self.valuer.to_reporting(trade.notional, currency)
                assert notional is not None
                bucket = state.volume.add(trade.ts, notional)  # None: the window has left it
                if bucket is not None:
                    buckets.add(bucket)
            step.writes.extend(
                (
                    journal_key("volume", state.exchange, b),
                    {"amount": decimal_text(state.volume.amount(b))},
                )
                for b in sorted(buckets)
            )
            step.writes.append((journal_key("awaiting", state.exchange, currency), None))
        if priced:
            self._drop_dependencies(state)

    def _saw_trade(self, state: ExchangeState, trade: Trade, step: Step) -> None:
        # apart from the buckets, which leave with the window: the trades feed's age
        if state.saw(Feed.TRADES, trade.ts):
            step.writes.append(
                (journal_key("feed", state.exchange, Feed.TRADES), {"ts": trade.ts.isoformat()})
            )

    def _apply_wallet(self, state: ExchangeState, wallet: WalletBalance, step: Step) -> None:
        if not state.holdings.newer_than_held(wallet):
            step.outcome = Outcome.STALE
            return
        step.outcome = Outcome.APPLIED
        self._advance(wallet.ts)
        self._note_hot_fall(state, wallet, step)
        self._take_wallet(state, wallet)
        step.writes.append(
            (
                journal_key("wallet", state.exchange, wallet.wallet, wallet.asset),
                to_document(wallet),
            )
        )

    def _note_hot_fall(self, state: ExchangeState, wallet: WalletBalance, step: Step) -> None:
        """Keep a live snapshot that lowers a hot balance as evidence of a drain."""
        if state.hot_peaks is None:
            return
        held = state.holdings.snapshots.get((wallet.wallet, wallet.asset))
        before = held.balance if held is not None and held.custody is Custody.HOT else ZERO
        after = wallet.balance if wallet.custody is Custody.HOT else ZERO
        if after >= before:
            return
        price = self.valuer.prices.get(wallet.asset, ZERO)
        value = MONEY_CONTEXT.multiply(MONEY_CONTEXT.subtract(before, after), price)
        fall = HotFall(wallet.ts, wallet.wallet, wallet.asset, wallet.holder, before, after, value)
        assert self.clock is not None
        if state.record_fall(fall, self.clock - state.hot_peaks.window):
            step.writes.append(
                (
                    journal_key("hotfalls", state.exchange),
                    {"falls": [kept.to_document() for kept in state.hot_falls]},
                )
            )

    def _observe_hot_value(self, state: ExchangeState, step: Step) -> None:
        """Move the exchange's hot-value peak window to now, with the value now."""
        peaks = state.hot_peaks
        if peaks is None or not state.holdings.snapshots:
            return
        assert self.clock is not None
        peaks.observe(self.clock, state.holdings.hot_value())
        written, dropped = peaks.journal()
        step.writes.extend((journal_key("peak", state.exchange, seq), None) for seq in dropped)
        step.writes.extend(
            (journal_key("peak", state.exchange, level.seq), level.to_document())
            for level in written
        )

    def _take_wallet(self, state: ExchangeState, wallet: WalletBalance) -> None:
        self._dependents[wallet.asset].add(state.exchange)
        state.holdings.replace(wallet, self.valuer.prices)
        price = self.valuer.latest.get(wallet.asset)
        if price is not None:
            state.holdings.priced_at(wallet.asset, price.ts)
        state.saw(Feed.WALLETS, wallet.ts)

    def _apply_ledger(self, state: ExchangeState, entry: LedgerEvent, step: Step) -> None:
        held = self._held_ledger(state, entry)
        if held is not None and held.ts >= entry.ts:
            step.outcome = Outcome.STALE
            return
        step.outcome = Outcome.APPLIED
        self._advance(entry.ts)
        self._take_ledger(state, entry)
        step.writes.append(
            (journal_key("ledger", state.exchange, *_ledger_slot(entry)), to_document(entry))
        )

    def _held_ledger(self, state: ExchangeState, entry: LedgerEvent) -> LedgerEvent | None:
        ledger = state.ledger
        if isinstance(entry, CustomerLiability):
            return ledger.liabilities.get(entry.asset)
        if isinstance(entry, InsurancePolicy):
            return ledger.insurance.get(entry.policy_id)
        if isinstance(entry, ReserveFund):
            return ledger.reserve_fund
        if isinstance(entry, OwnFunds):
            return ledger.own_funds
        return ledger.fixed_overheads

    def _take_ledger(self, state: ExchangeState, entry: LedgerEvent) -> None:
        held = self._held_ledger(state, entry)
        if held is not None and held.ts >= entry.ts:
            return
        ledger = state.ledger
        old_currency = getattr(held, "currency", None)
        if isinstance(entry, CustomerLiability):
            ledger.liabilities[entry.asset] = entry
            self._dependents[entry.asset].add(state.exchange)
            state.holdings.owe(
                entry.asset, entry.amount, entry.ts, self.valuer.prices.get(entry.asset)
            )
        elif isinstance(entry, InsurancePolicy):
            ledger.insurance[entry.policy_id] = entry
        elif isinstance(entry, ReserveFund):
            ledger.reserve_fund = entry
        elif isinstance(entry, OwnFunds):
            ledger.own_funds = entry
        elif isinstance(entry, FixedOverheads):
            ledger.fixed_overheads = entry
        currency = getattr(entry, "currency", None)
        if currency is not None and currency != self.valuer.reporting_currency:
            self._dependents[currency].add(state.exchange)
        if old_currency is not None and old_currency != currency:
            self._drop_dependencies(state)
        state.saw(Feed.LEDGER, entry.ts)

    def _drop_dependencies(self, state: ExchangeState) -> None:
        """Stop revaluing ``state`` on prices its figures no longer need.

        Called when a ledger figure changes currency, so an exchange depends on the
        same prices as one restored from the journal, whatever its history.
        """
        needed = set(state.holdings.assets) | set(state.ledger.liabilities) | set(state.awaiting)
        needed.update(figure.currency for figure in _currency_figures(state.ledger))
        for asset, dependents in self._dependents.items():
            if asset not in needed:
                dependents.discard(state.exchange)

    def _evaluate(self, state: ExchangeState, step: Step) -> None:
        assert self.clock is not None
        if state.awaiting:
            self._release(state, step)
        self._journal_clock(state, step)
        self._observe_hot_value(state, step)
        view = ExchangeView(state, self.valuer, self.clock)
        for rule in self.rules_of(state.exchange):
            assessment = rule.assess(view)
            held = state.rules.setdefault(rule.id, RuleState())
            status = classify(assessment, rule.thresholds, held.status)
            held.assessment = assessment
            if status is held.status:
                continue
            held.changes += 1
            step.changes.append(
                StatusChange(
                    state.exchange,
                    rule.id,
                    status,
                    held.status,
                    held.changes,
                    self.clock,
                    assessment,
                )
            )
            held.status = status
            step.writes.append(
                (
                    journal_key("rule", state.exchange, rule.id),
                    {"status": status.value, "changes": held.changes},
                )
            )
        step.writes.extend(
            (journal_key("volume", state.exchange, b), None) for b in state.volume.evicted()
        )
        step.evaluated.append(state.exchange)

    def _journal_clock(self, state: ExchangeState, step: Step) -> None:
        """Journal the time ``state`` is evaluated at, so a restore brings the clock back.

        One write per evaluation at a newer time. None when a price entry (restored
        by every worker, whatever partitions it owns) already holds that time.
        """
        clock = self.clock
        assert clock is not None
        if state.restorable_clock is not None and clock <= state.restorable_clock:
            return
        state.restorable_clock = clock
        if self.valuer.newest is None or clock > self.valuer.newest:
            step.writes.append((journal_key("clock", state.exchange), {"ts": clock.isoformat()}))
