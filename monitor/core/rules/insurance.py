"""Risk ahead: insurance that ends soon and whose end would leave the exchange in breach.

Every rule that counts insurance (``jp.liability_reserve``, ``hk.compensation_cover``,
``eu.mica_own_funds``) asks the same question of its own figures: when a policy
ends within the horizon (its ``insurance_expiry_horizon``), does what is left
still meet the requirement? Every other figure is taken as it is now (volume,
funds, holdings and prices cannot be foreseen); the insurance is what the rule
itself would count at that moment, so a renewal in force from then on counts and
clears the risk.

Insurance in force falls only when a policy ends, so the least cover within the
horizon is found at one of the ends inside it, and those moments are all that is
judged. The cost is the number of policies ending within the horizon times the
exchange's policies; it does not grow with history, and it depends on nothing
but the evaluation time, so a replay foresees exactly what the worker did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from monitor.core.money import (
    MONEY_CONTEXT,
    ZERO,
    amount_text,
    duration_text,
    money_text,
    percent_text,
    ratio_text,
    rfc3339,
)
from monitor.core.rules.base import Assessment, ExchangeView, Explanation
from monitor.core.rules.inputs import Insurance, insurance_cover

_ctx: Final = MONEY_CONTEXT
# the finest step of event time: a policy counts until the instant before its end
_INSTANT: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class InsuranceAhead:
    """What the insurance ending within ``horizon`` leaves of a rule's cover.

    ``moment`` is the end judged: the first that leaves a breach, else the one
    that leaves the least; None when no policy ends within the horizon.
    ``insurance`` is what the rule would count from ``moment`` on, and
    ``available`` what it would then have against the same ``required``.
    """

    horizon: timedelta
    ending: dict[str, datetime]
    required: Decimal
    breach_below: Decimal
    moment: datetime | None = None
    ended: tuple[str, ...] = ()
    insurance: Decimal = ZERO
    available: Decimal = ZERO

    @property
    def ratio(self) -> Decimal | None:
        """The ratio foreseen at ``moment``; None when nothing ends within the horizon."""
        return None if self.moment is None else _ctx.divide(self.available, self.required)

    @property
    def shortfall(self) -> Decimal:
        return max(ZERO, _ctx.subtract(self.required, self.available))

    @property
    def leaves_breach(self) -> bool:
        ratio = self.ratio
        return ratio is not None and ratio < self.breach_below

    def evidence(self) -> dict[str, Any]:
        """The ``insurance_ahead`` evidence of the rule."""
        document: dict[str, Any] = {
            "horizon": duration_text(self.horizon),
            "ending": {policy: rfc3339(end) for policy, end in self.ending.items()},
        }
        ratio = self.ratio
        if self.moment is not None and ratio is not None:
            document.update(
                judged_at=rfc3339(self.moment),
                ended=list(self.ended),
                insurance=money_text(self.insurance),
                available=money_text(self.available),
                ratio=ratio_text(ratio),
                shortfall=money_text(self.shortfall),
                leaves_breach=self.leaves_breach,
            )
        return document

    def added_to(self, reason: str, ratio_now: Decimal, currency: str) -> str:
        """``reason`` with the risk ahead told after it, when there is one to tell.

        Not while the rule is in breach already (``ratio_now`` under the breach
        level): its reason asks for more now.
        """
        ratio = self.ratio
        if ratio is None or self.moment is None:
            return reason
        if ratio >= self.breach_below or ratio_now < self.breach_below:
            return reason
        one = len(self.ended) == 1
        return (
            f"{reason} Insurance {_names(self.ended)} {'ends' if one else 'end'} at "
            f"{rfc3339(self.moment)}, within the {duration_text(self.horizon)} horizon: "
            f"unless renewed, {amount_text(self.available, currency)} will then stand "
            f"against the {amount_text(self.required, currency)} required "
            f"({percent_text(ratio)}); renew {'it' if one else 'them'} or add "
            f"{amount_text(self.shortfall, currency)} before then."
        )


def insurance_ahead(
    view: ExchangeView,
    horizon: timedelta | None,
    *,
    required: Decimal,
    available: Decimal,
    counted: Decimal,
    breach_below: Decimal,
    max_price_age: timedelta | None = None,
    min_term: timedelta | None = None,
    cap: Decimal | None = None,
) -> InsuranceAhead | None:
    """The risk ahead of a rule that counts ``counted`` of insurance in ``available`` now.

    The rule's own terms for insurance apply at each end: ``min_term``,
    ``max_price_age`` and ``cap`` (the most insurance may count). None when the
    look ahead is off (``horizon`` None) or nothing is required.
    """
    if horizon is None or required <= 0:
        return None
    now, until = view.now, view.now + horizon

    def counted_at(moment: datetime) -> Insurance:
        cover = insurance_cover(view, max_price_age, min_term, at=moment, strict=False)
        assert not isinstance(cover, Assessment)  # not strict: never unknown
        return cover

    # the ends within the horizon of policies the rule counts up to their end (one it
    # never counts, such as a term too short for MiCA, takes nothing away by ending)
    ending: dict[str, datetime] = {}
    after: dict[datetime, Insurance] = {}
    for moment in sorted({p.valid_to for p in view.state.ledger.insurance.values()}):
        if moment > until:
            view.until(moment - horizon)  # the end comes within the horizon then
        if not now < moment <= until:
            continue
        before = counted_at(moment - _INSTANT).policies
        after[moment] = counted_at(moment)
        ending.update((policy, moment) for policy in before if policy not in after[moment].policies)
    # what the rule counts apart from insurance, held as it is now
    others = _ctx.subtract(available, counted)
    judged = InsuranceAhead(horizon, dict(sorted(ending.items())), required, breach_below)
    for moment, cover in after.items():
        ended = tuple(sorted(policy for policy, end in ending.items() if end == moment))
        if not ended:
            continue
        insurance = cover.counted if cap is None else min(cover.counted, cap)
        then = replace(
            judged,
            moment=moment,
            ended=ended,
            insurance=insurance,
            available=_ctx.add(others, insurance),
        )
        if then.leaves_breach:
            return then  # the first end that leaves a breach is the one to act on
        if judged.moment is None or then.available < judged.available:
            judged = then
    return judged


def with_ahead(assessment: Assessment, ahead: InsuranceAhead | None, currency: str) -> Assessment:
    """``assessment`` with the risk ahead in its evidence, its reason and ``ratio_ahead``."""
    if ahead is None or assessment.ratio is None:
        return assessment
    ratio = assessment.ratio

    def explain() -> Explanation:
        reason = ahead.added_to(assessment.reason, ratio, currency)
        return reason, {**assessment.evidence, "insurance_ahead": ahead.evidence()}

    return Assessment(
        assessment.required,
        assessment.available,
        ratio,
        assessment.shortfall,
        explain,
        ratio_ahead=ahead.ratio,
    )


def _names(policies: tuple[str, ...]) -> str:
    if len(policies) == 1:
        return policies[0]
    return ", ".join(policies[:-1]) + " and " + policies[-1]
