"""``jp.cold_storage``: the cold-wallet share of customer crypto value.

``ratio`` is the cold share itself, held against ``minimum_share``;
``required`` is the cold value the minimum share demands, ``available`` the
cold value held and ``shortfall`` the value to move from hot to cold storage.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Final

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
    prices_fresh,
    stale_input,
    stale_prices,
    unknown,
)
from monitor.core.rules.params import Duration, Number, Params, consistent
from monitor.core.rules.registry import RuleSpec, register
from monitor.core.state import Feed
from monitor.core.status import Status, Thresholds

_ctx: Final = MONEY_CONTEXT
# bound once: C statics, compiled
_add: Final = MONEY_CONTEXT.add
_divide: Final = MONEY_CONTEXT.divide


class ColdStorageParams(Params):
    minimum_share: "Annotated[Number, Field(le=1)]"
    warning_share: "Annotated[Number, Field(le=1)]"
    hysteresis: "Number"
    max_wallet_age: "Duration"
    max_price_age: "Duration"

    @consistent
    def _consistent(self) -> None:
        if self.warning_share < self.minimum_share:
            raise ValueError("warning_share must not be under minimum_share")


class ColdStorage:
    """At least ``minimum_share`` of customer crypto value held in cold wallets."""

    def __init__(self, rule_id: str, params: ColdStorageParams) -> None:
        self.id = rule_id
        self.params = params
        self.thresholds = Thresholds(params.minimum_share, params.warning_share, params.hysteresis)
        self.breach_for = params.breach_for
        self.reads = Inputs.WALLETS | Inputs.PRICES
        # read at every price moment by the direct path: a native attribute, where a
        # pydantic model's field is a generic attribute lookup
        self._max_price_age: timedelta = params.max_price_age

    def quick_ratio(self, view: ExchangeView) -> Decimal | None:
        """The cold share, when every input is known (see :class:`QuickRule`)."""
        holdings = view.state.holdings
        if holdings.unpriced or not prices_fresh(view, self._max_price_age):
            return None
        cold, hot = holdings.customer_values()
        total = _add(cold, hot)
        return _divide(cold, total) if total > 0 else None

    def assess(self, view: ExchangeView) -> Assessment:
        p, holdings = self.params, view.state.holdings
        stale = stale_input(
            view, Feed.WALLETS, view.state.feeds.get(Feed.WALLETS), p.max_wallet_age
        )
        if stale is not None:
            return stale
        if holdings.unpriced:
            return unknown(
                "customer crypto cannot be valued: no price for "
                + ", ".join(sorted(holdings.unpriced)),
                unpriced=sorted(holdings.unpriced),
            )
        stale = stale_prices(view, p.max_price_age)
        if stale is not None:
            return stale
        cold = holdings.value_of(Custody.COLD, Holder.CUSTOMER)
        hot = holdings.value_of(Custody.HOT, Holder.CUSTOMER)
        total = _ctx.add(cold, hot)
        if total <= 0:
            return unknown(
                f"{view.state.exchange} reports no customer crypto to divide", customer_value="0"
            )
        share = _ctx.divide(cold, total)
        required = _ctx.multiply(p.minimum_share, total)
        shortfall = max(ZERO, _ctx.subtract(required, cold))
        currency = view.valuer.reporting_currency

        def explain() -> Explanation:
            evidence = {
                "cold_customer_value": money_text(cold),
                "hot_customer_value": money_text(hot),
                "cold_share": ratio_text(share),
                "minimum_share": ratio_text(p.minimum_share),
            }
            if shortfall > 0:
                reason = (
                    f"Only {percent_text(share)} of customer crypto value is in cold storage, "
                    f"under the {percent_text(p.minimum_share)} minimum; move "
                    f"{amount_text(shortfall, currency)} of crypto from hot to cold wallets."
                )
            elif self.thresholds.level(share) is Status.WARNING:
                margin = _ctx.subtract(_ctx.multiply(p.warning_share, total), cold)
                reason = (
                    f"Cold storage holds {percent_text(share)} of customer crypto value, above "
                    f"the {percent_text(p.minimum_share)} minimum but under the "
                    f"{percent_text(p.warning_share)} early-warning level; moving "
                    f"{amount_text(margin, currency)} of crypto from hot to cold wallets restores "
                    f"the margin."
                )
            else:
                reason = (
                    f"Cold storage holds {percent_text(share)} of customer crypto value "
                    f"(minimum {percent_text(p.minimum_share)})."
                )
            return reason, evidence

        return Assessment(required, cold, share, shortfall, explain)


register(
    RuleSpec(
        "jp.cold_storage",
        pack="jp",
        params="cold_storage",
        order=20,
        build=lambda params, pack: ColdStorage("jp.cold_storage", params),
    )
)

register(
    RuleSpec(
        "hk.cold_storage",
        pack="hk",
        params="cold_storage",
        order=50,
        build=lambda params, pack: ColdStorage("hk.cold_storage", params),
    )
)
