"""``jp.liability_reserve``: the reserve fund and eligible insurance against a floor.

The floor is the largest of its components (a rate on trailing trading volume,
a share of customer value in hot wallets, a fixed amount), clamped to
[minimum_floor, maximum_floor]. Insurance counts only while in force and only
up to ``insurance_max_share`` of the floor; a policy that ends within
``insurance_expiry_horizon`` and whose end would leave a breach warns before it
ends (:mod:`monitor.core.rules.insurance`).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import Field

from monitor.core.events import Custody, Holder
from monitor.core.money import (
    MONEY_CONTEXT,
    ZERO,
    amount_text,
    decimal_text,
    duration_text,
    money_text,
    percent_text,
)
from monitor.core.rules.base import (
    INSTANT,
    Assessment,
    ExchangeView,
    Explanation,
    Inputs,
    stale_input,
    unknown,
)
from monitor.core.rules.inputs import figure_too_old, insurance_cover
from monitor.core.rules.insurance import insurance_ahead, with_ahead
from monitor.core.rules.params import Duration, Horizon, Number, Params, consistent
from monitor.core.rules.registry import RuleSpec, register
from monitor.core.state import Feed
from monitor.core.status import Status, Thresholds

_ctx: Final = MONEY_CONTEXT
_multiply: Final = MONEY_CONTEXT.multiply  # bound once: a C static, compiled
# read at every trade's moment, bound once: Python 3.11 takes 0.1 µs to read a member
# off its enum class (its metaclass's lookup), ten times a global's
_TRADES: Final = Feed.TRADES


class LiabilityReserveParams(Params):
    volume_window: "Duration"
    volume_bucket: "Duration"
    volume_rate: "Number"
    hot_customer_value_share: "Number"
    fixed_floor: "Number"
    # a zero floor would leave nothing to divide by: the floor must be positive
    minimum_floor: "Annotated[Number, Field(gt=0)]"
    maximum_floor: "Number"
    insurance_max_share: "Annotated[Number, Field(le=1)]"
    insurance_expiry_horizon: "Horizon"
    breach_below: "Number"
    warning_below: "Number"
    hysteresis: "Number"
    max_ledger_age: "Duration"
    max_trades_age: "Duration"

    @consistent
    def _consistent(self) -> None:
        if self.maximum_floor < self.minimum_floor:
            raise ValueError("maximum_floor must not be under minimum_floor")
        if self.warning_below < self.breach_below:
            raise ValueError("warning_below must not be under breach_below")
        if self.volume_window % self.volume_bucket:
            raise ValueError("volume_window must be a whole number of volume_bucket")


class LiabilityReserve:
    """The liability reserve planned by Japan's FSA (see ``packs/jp.yaml``)."""

    id = "jp.liability_reserve"

    def __init__(self, params: LiabilityReserveParams) -> None:
        self.params = params
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)
        self.breach_for = params.breach_for
        self.reads = Inputs.VOLUME | Inputs.LEDGER
        # the floor when the volume component is not the largest (None: it moves with
        # hot-wallet value too), for the direct path of unchanged()
        self._largest_without_volume = max(params.fixed_floor, params.minimum_floor)
        self._floor_without_volume: Decimal | None = min(
            self._largest_without_volume, params.maximum_floor
        )
        if params.hot_customer_value_share:
            self.reads |= Inputs.WALLETS | Inputs.PRICES
            self._floor_without_volume = None
        # what the direct path reads on every trade, as native attributes (a pydantic
        # model's field is a generic attribute lookup)
        self._volume_rate: Decimal = params.volume_rate
        self._max_trades_age: timedelta = params.max_trades_age

    def unchanged(self, view: ExchangeView, before: Assessment, changed: int) -> bool:
        """Whether only trades came and the floor cannot have moved: the direct path.

        The floor is the largest of its components, clamped. While the volume
        component stays at or under the others, the floor is the same, and so is
        every figure the status follows from; only the volume in the evidence moved.
        """
        if changed != Inputs.VOLUME or self._floor_without_volume is None:
            return False
        if before.ratio is None or before.required != self._floor_without_volume:
            return False
        state = view.state
        if state.awaiting:
            return False
        # a trade dated before the trades feed's allowed age (a first trade, late) makes the
        # feed stale: the full assessment says so
        last_trade = state.feeds.get(_TRADES)
        if last_trade is not None:
            fresh_until = last_trade + self._max_trades_age
            if view.now > fresh_until:
                return False
            # the trades feed turns too old then, whatever else comes (the trade may be
            # the feed's first: no deadline of the last assessment says so)
            view.until(fresh_until + INSTANT)
        volume = state.trading_volume(view.now)
        return _multiply(self._volume_rate, volume) <= self._largest_without_volume

    def assess(self, view: ExchangeView) -> Assessment:
        p, state, valuer = self.params, view.state, view.valuer
        # read first, whatever the verdict: reading moves the window, and the buckets that
        # leave it are journalled as deletions
        volume = state.trading_volume(view.now)
        eviction = state.volume.next_eviction()
        if eviction is not None:
            view.until(eviction)  # the oldest trades leave the window and the floor may fall
        fund = state.ledger.reserve_fund
        if fund is None:
            return unknown(
                f"no reserve_fund figure has arrived for {state.exchange} yet",
                missing="reserve_fund",
            )
        # the fund's own age: a fresh figure of another kind says nothing about the fund,
        # and insurance counts by its validity period, not by when it was stated
        stale = figure_too_old(view, "reserve_fund", fund.ts, p.max_ledger_age)
        if stale is not None:
            return stale
        # a trades feed that stopped hides the volume the floor grows with; an exchange that
        # has reported no trade yet is judged on no volume
        last_trade = state.feeds.get(Feed.TRADES)
        if p.volume_rate and last_trade is not None:
            stale = stale_input(view, Feed.TRADES, last_trade, p.max_trades_age)
            if stale is not None:
                return stale
        if p.volume_rate and state.awaiting:
            currencies = ", ".join(sorted(state.awaiting))
            waiting = state.awaiting_trades()
            trades = "1 trade" if waiting == 1 else f"{waiting} trades"
            return unknown(
                f"{trades} of {state.exchange} in {currencies} "
                f"{'waits' if waiting == 1 else 'wait'} for a market.prices price: the trading "
                "volume the floor grows with is not complete",
                awaiting_price=currencies,
            )
        fund_value = valuer.to_reporting(fund.amount, fund.currency)
        if fund_value is None:
            return unknown(
                f"no price converts the reserve fund's {fund.currency} "
                f"into {valuer.reporting_currency}",
                missing=f"price of {fund.currency}",
            )

        components = {"volume": _ctx.multiply(p.volume_rate, volume), "fixed": p.fixed_floor}
        hot: Decimal | None = None
        if p.hot_customer_value_share:
            if state.holdings.unpriced:
                return unknown(
                    "customer hot-wallet value is incomplete: no price for "
                    + ", ".join(sorted(state.holdings.unpriced))
                )
            hot = state.holdings.value_of(Custody.HOT, Holder.CUSTOMER)
            components["hot_customer_value"] = _ctx.multiply(p.hot_customer_value_share, hot)
        largest = max(components.values())
        floor = min(max(largest, p.minimum_floor), p.maximum_floor)

        # prices of any age, as for the fund: this rule does not judge the price feed
        cover = insurance_cover(view, None)
        if isinstance(cover, Assessment):
            return cover
        insurance_cap = _ctx.multiply(p.insurance_max_share, floor)
        insurance = min(cover.counted, insurance_cap)

        available = _ctx.add(fund_value, insurance)
        shortfall = max(ZERO, _ctx.subtract(floor, available))
        ratio = _ctx.divide(available, floor)
        ahead = insurance_ahead(
            view,
            p.insurance_expiry_horizon,
            required=floor,
            available=available,
            counted=insurance,
            breach_below=self.thresholds.breach_below,
            cap=insurance_cap,
        )
        currency = valuer.reporting_currency

        def explain() -> Explanation:
            evidence: dict[str, Any] = {
                "trading_volume": money_text(volume),
                "volume_window": duration_text(p.volume_window),
                "volume_rate": decimal_text(p.volume_rate),
                "floor_components": {k: money_text(v) for k, v in components.items()},
                "floor_clamp": [money_text(p.minimum_floor), money_text(p.maximum_floor)],
                "reserve_fund": money_text(fund_value),
                "insurance_in_force": cover.policies,
                "insurance_counted": money_text(insurance),
                "insurance_cap": money_text(insurance_cap),
                "insurance_max_share": decimal_text(p.insurance_max_share),
            }
            if hot is not None:
                evidence["hot_customer_value"] = money_text(hot)
                evidence["hot_customer_value_share"] = decimal_text(p.hot_customer_value_share)
            if cover.excluded:
                evidence["insurance_not_counted"] = cover.excluded
            return self._reason(ratio, floor, available, shortfall, currency), evidence

        assessment = Assessment(floor, available, ratio, shortfall, explain)
        return with_ahead(assessment, ahead, valuer.reporting_currency)

    def _reason(
        self, ratio: Decimal, floor: Decimal, available: Decimal, shortfall: Decimal, currency: str
    ) -> str:
        floor_text = amount_text(floor, currency)
        if shortfall > 0:
            return (
                f"Reserve fund plus eligible insurance cover {percent_text(ratio)} of the "
                f"{floor_text} floor; add {amount_text(shortfall, currency)} to the fund to "
                f"be compliant."
            )
        if self.thresholds.level(ratio) is Status.WARNING:
            warning_level = self.thresholds.warning_below
            margin = self.thresholds.warning_margin(floor, available)
            return (
                f"Reserves of {amount_text(available, currency)} are above the floor of "
                f"{floor_text} but under the {percent_text(warning_level)} early-warning "
                f"level; {amount_text(margin, currency)} more restores the margin."
            )
        return f"Reserves of {amount_text(available, currency)} cover the floor of {floor_text}."


register(
    RuleSpec(
        "jp.liability_reserve",
        pack="jp",
        params="liability_reserve",
        order=10,
        build=lambda params, pack: LiabilityReserve(params),
    )
)
