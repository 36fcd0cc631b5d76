"""``jp.hot_wallet_guarantee``: guarantee crypto against customer crypto in hot wallets.

Per asset, the exchange's ``guarantee`` holdings (in any custody: the Payment
Services Act wants them kept cold, which is a separate duty) must be at least
the ``customer`` holdings in hot wallets, in the same kind and quantity.

* ``ratio``: the worst asset's guarantee / hot customer quantity. It judges the
  status, so one short asset is a breach however small its value; a surplus in
  one asset never hides a shortfall in another. With no customer crypto in hot
  wallets nothing needs a guarantee and the ratio is reported as the cap
  (:data:`~monitor.core.coverage.RATIO_CAP`).
* ``required``: the value of the customer crypto in hot wallets;
  ``available``: the guarantee value, counted per asset up to that asset's need;
  ``shortfall``: Σ over short assets of the missing quantity x its price.

Everything is read from :class:`~monitor.core.coverage.AssetCoverage` kept by
the holdings, so an assessment costs O(1) plus the short assets it names.
"""

from __future__ import annotations

from typing import Any

from monitor.core.coverage import RATIO_CAP
from monitor.core.money import ZERO, amount_text, money_text, percent_text, ratio_text
from monitor.core.policy import HotWalletGuaranteeParams
from monitor.core.rules.base import Assessment, ExchangeView, stale_input, unknown
from monitor.core.rules.inputs import short_assets, short_text
from monitor.core.state import Feed
from monitor.core.status import Status, Thresholds


class HotWalletGuarantee:
    """Performance-guarantee crypto of the same kind and quantity as hot customer crypto."""

    id = "jp.hot_wallet_guarantee"

    def __init__(self, params: HotWalletGuaranteeParams) -> None:
        self.params = params
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)

    def assess(self, view: ExchangeView) -> Assessment:
        p, state = self.params, view.state
        stale = stale_input(view, Feed.WALLETS, state.feeds.get(Feed.WALLETS), p.max_wallet_age)
        if stale is not None:
            return stale
        cover = state.holdings.guarantee
        if cover.unpriced:
            names = sorted(cover.unpriced)
            return unknown(
                "hot customer crypto cannot be valued: no price for " + ", ".join(names),
                unpriced=names,
            )
        stale = stale_input(view, Feed.PRICES, view.valuer.newest, p.max_price_age)
        if stale is not None:
            return stale

        currency = view.valuer.reporting_currency
        required, shortfall = cover.required_value, max(ZERO, cover.shortfall_value)
        available = required - shortfall
        worst = cover.worst()
        if worst is None:
            return Assessment(
                ZERO,
                ZERO,
                RATIO_CAP,
                ZERO,
                "No customer crypto is in hot wallets; nothing needs a guarantee.",
                {"hot_customer_value": "0", "short_assets": {}},
            )
        ratio, worst_asset = worst
        listed, left_out = short_assets(view, cover, "guarantee", "hot_customer")
        evidence: dict[str, Any] = {
            "hot_customer_value": money_text(required),
            "guaranteed_value": money_text(available),
            "worst_asset": worst_asset,
            "worst_ratio": ratio_text(ratio),
            "short_assets": listed,
        }
        if left_out:
            evidence["short_assets_not_listed"] = left_out
        if cover.short:
            reason = (
                f"Guarantee crypto is short of the customer crypto in hot wallets in "
                f"{short_text(listed, left_out)}; move the exchange's own crypto of the same "
                f"kind into guarantee wallets (worth {amount_text(shortfall, currency)} now) "
                f"or move the customer crypto to cold storage."
            )
        elif self.thresholds.level(ratio) is Status.WARNING:
            reason = (
                f"Every asset in hot wallets is guaranteed, but {worst_asset}'s guarantee covers "
                f"only {percent_text(ratio)} of its hot customer holdings, under the "
                f"{percent_text(self.thresholds.warning_below)} early-warning level; add to it "
                f"before the next deposits arrive."
            )
        else:
            reason = (
                f"Guarantee crypto covers the customer crypto in hot wallets in every asset "
                f"(lowest: {worst_asset} at {percent_text(ratio)})."
            )
        return Assessment(required, available, ratio, shortfall, reason, evidence)
