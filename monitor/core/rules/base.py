"""What every rule has in common: its result, and the view of state it reads.

A rule is a pure function of an :class:`ExchangeView` (running totals kept by
the engine) and the evaluation time. It never sums over wallets; the cost of
one evaluation does not grow with the number of wallets or exchanges.

Evaluation is guarded: a rule declares the inputs it reads (:class:`Inputs`),
and while it assesses, every helper that compares a time with the moment
judged (an input's age, a window, a policy's validity) tells the view when time
alone could change the answer (:meth:`ExchangeView.until`). The exchange then
runs the rule again only when an input it reads has changed or that deadline
has come; until then its answer cannot differ.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from monitor.core.assessment import Assessment, Explanation
from monitor.core.money import duration_text
from monitor.core.state.view import ExchangeView
from monitor.core.status import Status, Thresholds

__all__ = [
    "INSTANT",
    "Assessment",
    "ExchangeView",
    "Explanation",
    "Inputs",
    "Rule",
    "feed_limits",
]


# the finest step of event time: a figure of age exactly ``max_age`` is not yet too old
INSTANT: Final = timedelta(microseconds=1)

# the rule parameters that bound the age of an input, by the feed (Feed) the input comes in
_AGE_LIMITS: Final = {
    "max_wallet_age": "wallet_balances",
    "max_price_age": "prices",
    "max_trades_age": "trades",
    "max_ledger_age": "ledger",
    "max_liability_age": "ledger",
    "max_own_funds_age": "ledger",
    "max_overheads_age": "ledger",
}


class Inputs:
    """The kinds of input whose change makes a rule run again: bit flags.

    Plain ints rather than an ``enum.IntFlag``, whose operators cost a call each on
    a path taken for every record; ``Final``, so the compiled core inlines them.
    """

    VOLUME: Final = 1  # trades: the rolling trading volume, and trades waiting for a price
    WALLETS: Final = 2  # wallet-balance snapshots
    PRICES: Final = 4  # a price the exchange is valued at moved
    LEDGER: Final = 8  # ledger figures (and a price that converts one of them)
    ALL: Final = 15


class Rule(Protocol):
    """One regulatory check.

    ``reads`` are the inputs whose change can change its answer; ``breach_for``
    how long of event time a new breach is held before it is published.
    """

    id: str
    thresholds: Thresholds
    reads: int
    breach_for: timedelta

    def assess(self, view: ExchangeView) -> Assessment: ...


class QuickRule(Rule, Protocol):
    """A rule with a direct path: its ratio, cheaply, when its inputs are all known.

    ``quick_ratio`` returns None whenever :meth:`assess` could answer ``unknown`` or
    could not say the ratio at once; the exchange then runs ``assess``. Otherwise
    it returns exactly the ratio ``assess`` would, so a status that this ratio
    keeps needs no new assessment (the guard test compares the two).
    """

    def quick_ratio(self, view: ExchangeView) -> Decimal | None: ...


def feed_limits(rule: Rule) -> dict[str, timedelta]:
    """How long each feed ``rule`` reads may stay silent before its figures must be too old.

    Taken from the rule's age parameters; a feed bounded by several (the ledger's
    figures) may be silent for the shortest of them.
    """
    limits: dict[str, timedelta] = {}
    params = getattr(rule, "params", None)
    for name, feed in _AGE_LIMITS.items():
        limit = getattr(params, name, None)
        if isinstance(limit, timedelta) and (feed not in limits or limit < limits[feed]):
            limits[feed] = limit
    return limits


def unknown(reason: str, **evidence: Any) -> Assessment:
    """An assessment that cannot be made: an input is missing or stale."""
    return Assessment(None, None, None, None, reason, evidence)


def stale_input(
    view: ExchangeView, feed: str, last: datetime | None, max_age: timedelta
) -> Assessment | None:
    """``unknown`` when ``feed`` never arrived or is older than ``max_age``, else None."""
    if last is None:
        return unknown(f"no {feed} data has arrived for {view.state.exchange} yet", feed=feed)
    age = view.now - last
    view.until(last + max_age + INSTANT)
    if age > max_age:
        return unknown(
            f"{feed} data for {view.state.exchange} is {duration_text(age)} old, "
            f"older than the {duration_text(max_age)} this rule allows",
            feed=feed,
            last_seen=last.isoformat(),
        )
    return None


def stale_prices(view: ExchangeView, max_age: timedelta) -> Assessment | None:
    """``unknown`` when the price of any asset the exchange holds is older than ``max_age``.

    One stale price is enough to misvalue the holdings (a feed of one asset that
    stops while the others go on), so the oldest price of a held asset is judged.
    An exchange that holds no priced asset has no price to judge.
    """
    oldest = view.state.holdings.oldest_price()
    if oldest is None:
        return None
    stated, asset = oldest
    age = view.now - stated
    view.until(stated + max_age + INSTANT)
    if age > max_age:
        return unknown(
            f"the newest market.prices price of {asset}, which values "
            f"{view.state.exchange}'s holdings, is {duration_text(age)} old, older than "
            f"the {duration_text(max_age)} this rule allows",
            feed="prices",
            asset=asset,
            last_seen=stated.isoformat(),
        )
    return None


def prices_fresh(view: ExchangeView, max_age: timedelta) -> bool:
    """Whether no held asset is valued at a price older than ``max_age`` (see stale_prices)."""
    oldest = view.state.holdings.oldest_price_time()
    if oldest is None:
        return True
    limit = oldest + max_age  # the price is still fresh at this time, not after it
    view.until(limit + INSTANT)
    return view.now <= limit


def classify(assessment: Assessment, thresholds: Thresholds, previous: Status) -> Status:
    """The status after hysteresis; ``unknown`` whenever the assessment is.

    A breach foreseen (``ratio_ahead`` under the breach level) makes an ``ok`` ratio
    a ``warning``, before the breach comes. Once warned, the foreseen ratio must
    clear the breach level by the hysteresis margin too, so a foreseen ratio
    hovering at the line does not flap.
    """
    if assessment.ratio is None:
        return Status.UNKNOWN
    status = thresholds.classify(assessment.ratio, previous)
    ahead = assessment.ratio_ahead
    if status is Status.OK and ahead is not None:
        warned = previous in (Status.WARNING, Status.BREACH)
        line = thresholds.breach_below + (thresholds.hysteresis if warned else 0)
        if ahead < line:
            return Status.WARNING
    return status
