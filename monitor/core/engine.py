"""The engine: routes records to their exchanges and keeps the shared price table.

The engine knows nothing of Kafka. A driver (the worker, ``replay``) hands it
decoded records in the order the broker appended them, and tells it when time
passes in append time or the input ends; the engine decides when each
exchange's moments close and are judged (CONTRACT section 8):

* :meth:`Engine.take` applies one record. An exchange record goes to its
  :class:`~monitor.core.state.exchange.Exchange`; a price record goes to the
  versioned :class:`~monitor.core.state.prices.PriceTable`, and to every exchange
  valued in its asset, for which a price dated after its clock is a moment.
  ``appended``, the record's append time, first lets the quiet gaps pass.
* :meth:`Engine.idle` says that append time has reached ``now`` with nothing
  more to take: an exchange whose input has been quiet for ``max_idle`` of
  append time has its newest moment judged.
* :meth:`Engine.finish` says the input has ended: every open moment is judged.
* :meth:`Engine.silence` says nothing of an exchange has come for a while of the
  driver's wall time: the rules whose feeds would by then be too old turn ``unknown``.

Each call returns a :class:`~monitor.core.changes.Step`: the outcome the
record is counted under and the status changes of the moments judged. A driver
with durable storage calls :meth:`Engine.journal_writes` when it commits: the
journal entries of the state changed since its last call, each key once, which
let it rebuild the state later with :meth:`Engine.restore`.

The journal's entries, their keys and documents are written and read by one
codec, :mod:`monitor.core.state.journal`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final

from monitor.core.changes import (
    CHANGE_NAMESPACE,
    Outcome,
    StatusChange,
    Step,
    Write,
    journal_key,
)
from monitor.core.events import (
    Event,
    Price,
)
from monitor.core.policy import Policy
from monitor.core.rules import Rule, rules_for
from monitor.core.state import journal
from monitor.core.state.dependents import Dependents
from monitor.core.state.exchange import Exchange
from monitor.core.state.journal import Entry as JournalEntry
from monitor.core.state.prices import DEFAULT_PRICE_HISTORY, PriceTable

__all__ = [
    "CHANGE_NAMESPACE",
    "DEFAULT_MAX_IDLE",
    "Engine",
    "Outcome",
    "StatusChange",
    "Step",
    "Write",
    "journal_key",
    "rules_for",
]

DEFAULT_SEEN_IDS: Final = 20_000
# Enum members read on every record, bound once: Python 3.11 takes 0.1 µs to read a
# member off its enum class (its metaclass's lookup), ten times a module global's.
_APPLIED: Final = Outcome.APPLIED
# how long of append time an exchange's input stays quiet before its newest moment is
# judged (RESERVE_MONITOR_MAX_IDLE_SECONDS)
DEFAULT_MAX_IDLE: Final = timedelta(seconds=0.1)
# trading volume of an exchange whose packs set no window (reported, not judged)
DEFAULT_VOLUME_WINDOW: Final = timedelta(days=1)
DEFAULT_VOLUME_BUCKET: Final = timedelta(hours=1)


class Engine:
    """Reserve adequacy of every exchange it has seen, each judged at its own moments.

    ``guarded`` False runs every rule at every moment (to check the guards);
    ``max_idle`` is the quiet gap of append time that closes a moment;
    ``price_history`` how far back each asset's prices are kept; ``journal`` False
    keeps nothing to journal (a driver without durable storage, such as ``replay``);
    ``journal_prices`` False journals no price (a driver that reads them back from their
    own topic, as the worker does). Only the latest price of each asset is journalled:
    a record dated before it, for an exchange new after a restart, is valued at the
    price history only a driver that reads the prices back has.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        seen_ids: int = DEFAULT_SEEN_IDS,
        max_idle: timedelta = DEFAULT_MAX_IDLE,
        price_history: timedelta = DEFAULT_PRICE_HISTORY,
        guarded: bool = True,
        journal: bool = True,
        journal_prices: bool = True,
    ) -> None:
        self.policy = policy
        self._journal_writes = journal
        self._journal_prices = journal and journal_prices
        self.prices = PriceTable(policy.reporting_currency, price_history)
        self._exchanges: dict[str, Exchange] = {}
        self._seen_ids = seen_ids
        self._max_idle = max_idle.total_seconds()
        self._guarded = guarded
        self._rules: dict[int, list[Rule]] = {}
        # asset or currency -> the exchanges valued in it
        self._dependents = Dependents()
        # (latest append time, exchange) of records that opened or re-opened a moment, a
        # heap: a driver may take records a little out of append order (the worker reads
        # its input topics side by side); an entry is current while it is its exchange's
        # latest append
        self._quiet: list[tuple[float, str]] = []
        self._appended: float | None = None
        self._journal: dict[str, JournalEntry] = {}  # restored, not yet rebuilt
        self._prices_changed: set[str] = set()  # assets whose price to journal
        self._changed: set[str] = set()  # exchanges with state to journal

    # -- driving -----------------------------------------------------------------

    def take(self, event: Event, appended: datetime | None = None) -> Step:
        """Apply one record, appended at ``appended`` (None: no append time known)."""
        return self.take_at(event, None if appended is None else appended.timestamp())

    def take_at(self, event: Event, seconds: float | None) -> Step:
        """:meth:`take` with the append time in seconds since the epoch, as a driver reading
        record timestamps has it."""
        if self._journal:
            self._rebuilt()
        step = Step()
        if seconds is not None:
            self._pass_quiet(seconds, step)
        if type(event) is Price:  # exact (the events are final): cheaper than isinstance
            self._take_price(event, step, seconds)
            return step
        exchange = self._exchanges.get(event.exchange)
        known = exchange is not None
        if exchange is None:
            exchange = self._new_exchange(event.exchange)
        exchange.take(event, step, seconds)
        if step.outcome is not _APPLIED:
            if not known:  # nothing of it is journalled: a rebuilt engine would not have it
                self._forget_one(event.exchange)
            return step
        if self._journal_writes:  # no journal, nothing to note for it
            self._changed.add(event.exchange)
        self._opened(exchange, seconds)
        return step

    def idle(self, now: datetime) -> Step:
        """Append time has reached ``now`` and nothing more is to be taken yet."""
        self._rebuilt()
        step = Step()
        self._pass_quiet(now.timestamp(), step)
        return step

    def silence(self, exchange: str, quiet: timedelta) -> Step:
        """Nothing of ``exchange`` has come for ``quiet`` of the driver's wall time, with
        nothing left to read: its rules that read a feed which would by then be older than
        they allow turn ``unknown`` ("feed silent"). Outside the guarantee of CONTRACT
        section 8: ``replay``, without a wall clock, never calls it."""
        self._rebuilt()
        step = Step()
        state = self._exchanges.get(exchange)
        if state is not None:
            state.silence(quiet, step)
            self._changed.add(exchange)
        return step

    def finish(self) -> Step:
        """The input has ended: judge every exchange's open moment, in exchange order."""
        self._rebuilt()
        step = Step()
        for name in sorted(self._exchanges):
            exchange = self._exchanges[name]
            if exchange.open:
                exchange.judge(step)
                self._changed.add(name)
            exchange.quiet_scheduled = False
        self._quiet.clear()
        return step

    def apply(self, event: Event) -> Step:
        """Take one record and judge what it opened, as if the input ended there; the
        step carries the journal writes since the last call too (:meth:`journal_writes`).

        A further record of the same moment re-opens it and it is judged again.
        """
        step = self.take(event)
        finished = self.finish()
        step.changes, step.evaluated = finished.changes, finished.evaluated
        step.writes = self.journal_writes()
        return step

    def journal_writes(self) -> list[Write]:
        """The journal entries of the state changed since the last call: each key once,
        with its document as it is now (None deletes the key). A driver with durable
        storage stores them with the input positions they follow from, in one commit."""
        self._rebuilt()
        writes: list[Write] = []
        for asset in sorted(self._prices_changed):
            price = self.prices.latest(asset)
            assert price is not None  # a price taken stays the latest of its asset or newer
            writes.append(journal.price(price))
        self._prices_changed.clear()
        for name in sorted(self._changed):
            exchange = self._exchanges.get(name)  # None: forgotten since
            if exchange is not None:
                writes.extend(exchange.journal_writes())
        self._changed.clear()
        return writes

    def restore(self, key: str, document: dict[str, Any]) -> None:
        """Put back one journalled piece of state (any order; a later write of a key wins).

        The engine rebuilds itself from what was put back on its next use.
        """
        self._journal[key] = journal.read(key, document)  # ValueError: a kind not known

    # -- reading -----------------------------------------------------------------

    @property
    def exchanges(self) -> dict[str, Exchange]:
        self._rebuilt()
        return self._exchanges

    @property
    def clock(self) -> datetime | None:
        """The newest moment of any exchange (None before any record)."""
        clocks = [ex.clock for ex in self.exchanges.values() if ex.clock is not None]
        newest = self.prices.newest
        if newest is not None:
            clocks.append(newest)
        return max(clocks) if clocks else None

    def rules_of(self, exchange: str) -> list[Rule]:
        policy = self.policy.for_exchange(exchange)
        rules = self._rules.get(id(policy))
        if rules is None:
            rules = self._rules[id(policy)] = rules_for(policy)
        return rules

    def forget(self, exchanges: Iterable[str]) -> None:
        """Drop the state of exchanges this engine no longer owns (partitions moved away)."""
        for exchange in exchanges:
            self._forget_one(exchange)

    # -- the parts ---------------------------------------------------------------

    def _new_exchange(self, name: str) -> Exchange:
        policy = self.policy.for_exchange(name)
        jp, ops = policy.jp, policy.ops
        window, bucket = (
            (jp.liability_reserve.volume_window, jp.liability_reserve.volume_bucket)
            if jp is not None
            else (DEFAULT_VOLUME_WINDOW, DEFAULT_VOLUME_BUCKET)
        )
        exchange = Exchange(
            name,
            self.rules_of(name),
            self.prices,
            self._dependents,
            volume_window=window,
            volume_bucket=bucket,
            seen_ids=self._seen_ids,
            drain_window=ops.hot_wallet_drain.window if ops is not None else None,
            guarded=self._guarded,
            journal=self._journal_writes,
        )
        self._exchanges[name] = exchange
        return exchange

    def _forget_one(self, name: str) -> None:
        exchange = self._exchanges.pop(name, None)
        if exchange is not None:
            exchange.forget()

    def _take_price(self, price: Price, step: Step, appended: float | None) -> None:
        held = self.prices.latest(price.asset)
        if held is not None and held.event_id == price.event_id:
            step.outcome = Outcome.DUPLICATE
            return
        if price.currency != self.prices.reporting_currency:
            step.outcome, step.error = (
                Outcome.INVALID,
                f"currency: prices must be in the reporting currency "
                f"{self.prices.reporting_currency}, not {price.currency}",
            )
            return
        if not self.prices.newer_than_held(price):
            step.outcome = Outcome.STALE
            return
        step.outcome = Outcome.APPLIED
        self.prices.take(price)
        if self._journal_prices:
            self._prices_changed.add(price.asset)
        exchanges, changed = self._exchanges, self._changed
        journalled = self._journal_writes
        fields = (price.ts, price.asset, price.price)  # read once, not once an exchange
        for name in self._dependents.of(price.asset):
            exchange = exchanges[name]
            exchange.take_price(price, fields, step, appended)
            if journalled:
                changed.add(name)
            self._opened(exchange, appended)

    def _opened(self, exchange: Exchange, appended: float | None) -> None:
        """``exchange`` took a record appended at ``appended``: its quiet gap starts again,
        from its latest append time (which the exchange keeps and journals)."""
        if appended is not None:
            self._schedule_quiet(exchange)

    def _schedule_quiet(self, exchange: Exchange) -> None:
        """One entry an exchange in the quiet-gap heap, at its latest append, not one a
        record: an exchange whose entry comes due having taken later records goes back in
        at its latest append."""
        if not exchange.quiet_scheduled and exchange.last_append is not None:
            exchange.quiet_scheduled = True
            heapq.heappush(self._quiet, (exchange.last_append, exchange.exchange))

    def _pass_quiet(self, now: float, step: Step) -> None:
        """Judge the open moments of exchanges quiet for ``max_idle`` of append time by ``now``,
        in the order of their latest append times."""
        if self._appended is not None and now < self._appended:
            now = self._appended  # append time never goes back
        self._appended = now
        quiet, horizon = self._quiet, now - self._max_idle
        while quiet and quiet[0][0] <= horizon:
            appended, name = heapq.heappop(quiet)
            exchange = self._exchanges.get(name)
            if exchange is None or not exchange.quiet_scheduled:
                continue  # forgotten, or judged at the end of the input
            last = exchange.last_append
            if last is not None and last > appended:
                heapq.heappush(quiet, (last, name))  # it spoke since: its gap runs from then
                continue
            exchange.quiet_scheduled = False
            if exchange.open:
                exchange.judge(step)
                self._changed.add(name)

    # -- rebuilding from the journal ---------------------------------------------

    def _rebuilt(self) -> None:
        if self._journal:
            restored, self._journal = self._journal, {}
            self._rebuild(restored.values())

    def _rebuild(self, restored: Iterable[JournalEntry]) -> None:
        """Put back the state a journal describes: prices first, then each exchange."""
        entries = sorted(  # a fixed order: the same journal always rebuilds the same engine
            restored, key=lambda entry: (entry.kind, entry.exchange or "", str(entry.parts))
        )
        by_exchange: dict[str, list[JournalEntry]] = {}
        for entry in entries:
            if entry.exchange is None:
                price = entry.price()
                if self.prices.newer_than_held(price):
                    self.prices.take(price)
            else:
                by_exchange.setdefault(entry.exchange, []).append(entry)
        for name, held in sorted(by_exchange.items()):
            exchange = self._exchanges.get(name) or self._new_exchange(name)
            exchange.rebuild(held)
            if exchange.clock is None:  # nothing but ids and statuses: nothing to judge
                self._forget_one(name)
            elif exchange.open:  # its quiet gap runs on
                self._schedule_quiet(exchange)
