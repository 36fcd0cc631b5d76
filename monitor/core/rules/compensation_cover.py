"""``hk.compensation_cover``: the SFC's compensation arrangement against client crypto.

``required`` = ``cold_share`` x customer value in cold wallets + ``hot_share`` x
customer value in hot wallets (50% and 100% by default); ``available`` = the sum
of the configured ``components``:

* ``reserve_fund``: the dedicated fund of the ledger (must be present and fresh);
* ``insurance``: every policy in force now (one that ends within
  ``insurance_expiry_horizon`` and whose end would leave a breach warns before it
  ends, :mod:`monitor.core.rules.insurance`);
* ``guarantee``: the value of the exchange's guarantee crypto in COLD wallets
  (cover kept hot can be taken by the same theft it is meant to compensate).

``ratio`` = available / required. Every value comes from running totals, so an
assessment costs O(1) plus the number of insurance policies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import Field

from monitor.core.events import Custody, Holder
from monitor.core.money import (
    MONEY_CONTEXT,
    ZERO,
    amount_text,
    money_text,
    percent_text,
    ratio_text,
)
from monitor.core.rules.base import (
    Assessment,
    ExchangeView,
    Explanation,
    Inputs,
    stale_input,
    stale_prices,
    unknown,
)
from monitor.core.rules.inputs import figure_too_old, insurance_cover, to_reporting
from monitor.core.rules.insurance import InsuranceAhead, insurance_ahead, with_ahead
from monitor.core.rules.params import Duration, Horizon, Number, Params, consistent, ordered
from monitor.core.rules.registry import RuleSpec, register
from monitor.core.state import Feed
from monitor.core.status import Status, Thresholds

_ctx: Final = MONEY_CONTEXT


CoverComponent = Literal["reserve_fund", "insurance", "guarantee"]


class CompensationCoverParams(Params):
    """``hk.compensation_cover``: cover against shares of cold and hot customer value."""

    components: "Annotated[list[CoverComponent], Field(min_length=1)]"
    cold_share: "Annotated[Number, Field(le=1)]"
    hot_share: "Annotated[Number, Field(le=1)]"
    insurance_expiry_horizon: "Horizon"
    breach_below: "Number"
    warning_below: "Number"
    hysteresis: "Number"
    max_ledger_age: "Duration"
    max_wallet_age: "Duration"
    max_price_age: "Duration"

    @consistent
    def _consistent(self) -> None:
        if len(set(self.components)) != len(self.components):
            raise ValueError("components must not repeat a component")
        if self.cold_share == 0 and self.hot_share == 0:
            raise ValueError("cold_share and hot_share must not both be 0")
        ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")


ServiceClass = Literal[1, 2, 3]


class CompensationCover:
    """Insurance, own funds and guarantee crypto covering client crypto (SFC)."""

    id = "hk.compensation_cover"

    def __init__(self, params: CompensationCoverParams) -> None:
        self.params = params
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)
        self.breach_for = params.breach_for
        self.reads = Inputs.WALLETS | Inputs.PRICES | Inputs.LEDGER

    def assess(self, view: ExchangeView) -> Assessment:
        p, state = self.params, view.state
        holdings = state.holdings
        stale = stale_input(view, Feed.WALLETS, state.feeds.get(Feed.WALLETS), p.max_wallet_age)
        if stale is not None:
            return stale
        if holdings.unpriced:
            names = sorted(holdings.unpriced)
            return unknown(
                "customer crypto cannot be valued: no price for " + ", ".join(names),
                unpriced=names,
            )
        stale = stale_prices(view, p.max_price_age)
        if stale is not None:
            return stale
        cold = holdings.value_of(Custody.COLD, Holder.CUSTOMER)
        hot = holdings.value_of(Custody.HOT, Holder.CUSTOMER)
        required = _ctx.add(_ctx.multiply(p.cold_share, cold), _ctx.multiply(p.hot_share, hot))
        if required <= 0:
            return unknown(
                f"{state.exchange} reports no customer crypto to cover", customer_value="0"
            )

        components: dict[str, Decimal] = {}
        insured = ZERO
        insurance_evidence: dict[str, object] = {}
        if "reserve_fund" in p.components:
            fund = state.ledger.reserve_fund
            if fund is None:
                return unknown(
                    f"no reserve_fund figure has arrived for {state.exchange} yet "
                    "(listed as a cover component)",
                    missing="reserve_fund",
                )
            stale = figure_too_old(view, "reserve_fund", fund.ts, p.max_ledger_age)
            if stale is not None:
                return stale
            value = to_reporting(view, fund.amount, fund.currency, p.max_price_age, "the fund")
            if isinstance(value, Assessment):
                return value
            components["reserve_fund"] = value
        if "insurance" in p.components:
            insurance = insurance_cover(view, p.max_price_age)
            if isinstance(insurance, Assessment):
                return insurance
            components["insurance"] = insured = insurance.counted
            insurance_evidence["insurance_in_force"] = insurance.policies
            if insurance.excluded:
                insurance_evidence["insurance_not_counted"] = insurance.excluded
        if "guarantee" in p.components:
            components["guarantee"] = holdings.value_of(Custody.COLD, Holder.GUARANTEE)

        available = sum(components.values(), ZERO)
        ratio = _ctx.divide(available, required)
        shortfall = max(ZERO, _ctx.subtract(required, available))
        currency = view.valuer.reporting_currency
        ahead: InsuranceAhead | None = None
        if "insurance" in p.components:
            ahead = insurance_ahead(
                view,
                p.insurance_expiry_horizon,
                required=required,
                available=available,
                counted=insured,
                breach_below=self.thresholds.breach_below,
                max_price_age=p.max_price_age,
            )

        def explain() -> Explanation:
            evidence: dict[str, object] = {
                "cold_customer_value": money_text(cold),
                "hot_customer_value": money_text(hot),
                "cold_share": ratio_text(p.cold_share),
                "hot_share": ratio_text(p.hot_share),
                **insurance_evidence,
                "components": {name: money_text(v) for name, v in components.items()},
            }
            reason = self._reason(ratio, required, available, shortfall, components, currency)
            return reason, evidence

        assessment = Assessment(required, available, ratio, shortfall, explain)
        return with_ahead(assessment, ahead, currency)

    def _reason(
        self,
        ratio: Decimal,
        required: Decimal,
        available: Decimal,
        shortfall: Decimal,
        components: dict[str, Decimal],
        currency: str,
    ) -> str:
        required_text = amount_text(required, currency)
        if shortfall > 0:
            return (
                f"The compensation arrangement ({', '.join(components)}) covers "
                f"{percent_text(ratio)} of the {required_text} required for client crypto; "
                f"add {amount_text(shortfall, currency)} of insurance or segregated funds, "
                f"or move client crypto from hot to cold storage."
            )
        if self.thresholds.level(ratio) is Status.WARNING:
            margin = self.thresholds.warning_margin(required, available)
            return (
                f"The compensation arrangement covers {percent_text(ratio)} of the "
                f"{required_text} required, under the "
                f"{percent_text(self.thresholds.warning_below)} early-warning level; "
                f"{amount_text(margin, currency)} more restores the margin."
            )
        return (
            f"The compensation arrangement of {amount_text(available, currency)} covers "
            f"the {required_text} required for client crypto."
        )


register(
    RuleSpec(
        "hk.compensation_cover",
        pack="hk",
        params="compensation_cover",
        order=60,
        build=lambda params, pack: CompensationCover(params),
    )
)
