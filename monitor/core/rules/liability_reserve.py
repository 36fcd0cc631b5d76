"""``jp.liability_reserve``: the reserve fund and eligible insurance against a floor.

The floor is the largest of its components (a rate on trailing trading volume,
a share of customer value in hot wallets, a fixed amount), clamped to
[minimum_floor, maximum_floor]. Insurance counts only while in force and only
up to ``insurance_max_share`` of the floor.
"""

from __future__ import annotations

from decimal import Decimal

from monitor.core.events import Custody, Holder
from monitor.core.money import (
    MONEY_CONTEXT,
    ZERO,
    amount_text,
    duration_text,
    money_text,
    percent_text,
)
from monitor.core.policy import LiabilityReserveParams
from monitor.core.rules.base import Assessment, ExchangeView, stale_input, unknown
from monitor.core.rules.inputs import figure_too_old
from monitor.core.state import Feed
from monitor.core.status import Status, Thresholds

_ctx = MONEY_CONTEXT


class LiabilityReserve:
    """The liability reserve planned by Japan's FSA (see ``packs/jp.yaml``)."""

    id = "jp.liability_reserve"

    def __init__(self, params: LiabilityReserveParams) -> None:
        self.params = params
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)

    def assess(self, view: ExchangeView) -> Assessment:
        p, state, valuer = self.params, view.state, view.valuer
        # read first, whatever the verdict: reading moves the window, and the buckets that
        # leave it are journalled as deletions
        volume = state.trading_volume(view.now)
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
        fund_value = valuer.to_reporting(fund.amount, fund.currency)
        if fund_value is None:
            return unknown(
                f"no price converts the reserve fund's {fund.currency} "
                f"into {valuer.reporting_currency}",
                missing=f"price of {fund.currency}",
            )

        components = {"volume": _ctx.multiply(p.volume_rate, volume), "fixed": p.fixed_floor}
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

        insurance_in_force = ZERO
        policies: dict[str, str] = {}
        for policy in state.ledger.insurance.values():
            if not policy.in_force(view.now):
                continue
            coverage = valuer.to_reporting(policy.coverage, policy.currency)
            if coverage is None:
                return unknown(
                    f"no price converts insurance {policy.policy_id}'s "
                    f"{policy.currency} into {valuer.reporting_currency}"
                )
            insurance_in_force = _ctx.add(insurance_in_force, coverage)
            policies[policy.policy_id] = money_text(coverage)
        insurance_cap = _ctx.multiply(p.insurance_max_share, floor)
        insurance = min(insurance_in_force, insurance_cap)

        available = _ctx.add(fund_value, insurance)
        shortfall = max(ZERO, _ctx.subtract(floor, available))
        ratio = _ctx.divide(available, floor)
        evidence = {
            "trading_volume": money_text(volume),
            "volume_window": duration_text(p.volume_window),
            "floor_components": {k: money_text(v) for k, v in components.items()},
            "floor_clamp": [money_text(p.minimum_floor), money_text(p.maximum_floor)],
            "reserve_fund": money_text(fund_value),
            "insurance_in_force": policies,
            "insurance_counted": money_text(insurance),
            "insurance_cap": money_text(insurance_cap),
        }
        reason = self._reason(ratio, floor, available, shortfall, valuer.reporting_currency)
        return Assessment(floor, available, ratio, shortfall, reason, evidence)

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
