"""What every rule has in common: its result, and the view of state it reads.

A rule is a pure function of an :class:`ExchangeView` (running totals kept by
the engine) and the evaluation time. It never sums over wallets; the cost of
one evaluation does not grow with the number of wallets or exchanges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from monitor.core.money import duration_text
from monitor.core.status import Status, Thresholds

if TYPE_CHECKING:
    from monitor.core.state import ExchangeState
    from monitor.core.valuation import Valuer


@dataclass(frozen=True, slots=True)
class Assessment:
    """A rule's measurement: ``status`` is the raw level before hysteresis.

    ``ratio`` is ``available / required`` (for share rules, the share itself);
    ``None`` with status ``unknown``, when an input is missing or stale.
    ``ratio_ahead`` is the lowest ratio foreseen within the rule's horizon (insurance
    that ends, see :mod:`monitor.core.rules.insurance`); None when nothing is foreseen.
    """

    required: Decimal | None
    available: Decimal | None
    ratio: Decimal | None
    shortfall: Decimal | None
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    ratio_ahead: Decimal | None = None

    @property
    def known(self) -> bool:
        return self.ratio is not None


@dataclass(frozen=True, slots=True)
class ExchangeView:
    """What a rule may read: the exchange's state, prices in the reporting currency, the time."""

    state: ExchangeState
    valuer: Valuer
    now: datetime


class Rule(Protocol):
    """One regulatory check."""

    id: str
    thresholds: Thresholds

    def assess(self, view: ExchangeView) -> Assessment: ...


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
    if age > max_age:
        return unknown(
            f"{feed} data for {view.state.exchange} is {duration_text(age)} old, "
            f"older than the {duration_text(max_age)} this rule allows",
            feed=feed,
            last_seen=last.isoformat(),
        )
    return None


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
