"""``jp.segregation``: customer crypto held against what is owed to customers.

Per asset, the ``customer`` wallet holdings in any custody must be at least the
customer liability the ledger states (``customer_liability``).

* ``ratio``: the worst asset's customer holdings / liability (judges the status;
  a surplus in one asset never hides a shortfall in another). With nothing owed
  the ratio is reported as the cap (:data:`~monitor.core.coverage.RATIO_CAP`).
* ``required``: the value of the liabilities; ``available``: the customer
  holdings counted per asset up to what is owed in it; ``shortfall``: Σ over
  short assets of the missing quantity x its price.

Unknown while wallets are stale, before any liability figure, while the oldest
liability figure is older than ``max_liability_age``, while customers are owed
an asset of which no customer wallet snapshot has arrived yet, while customer
crypto is held in an asset no liability figure covers, or while a price is
missing or stale.
"""

from __future__ import annotations

from typing import Any

from monitor.core.coverage import RATIO_CAP
from monitor.core.money import ZERO, amount_text, money_text, percent_text, ratio_text
from monitor.core.policy import SegregationParams
from monitor.core.rules.base import Assessment, ExchangeView, stale_input, unknown
from monitor.core.rules.inputs import figure_too_old, short_assets, short_text
from monitor.core.state import Feed
from monitor.core.status import Status, Thresholds


class Segregation:
    """Segregated customer crypto of at least what the exchange owes, asset by asset."""

    id = "jp.segregation"

    def __init__(self, params: SegregationParams) -> None:
        self.params = params
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)

    def assess(self, view: ExchangeView) -> Assessment:
        p, state = self.params, view.state
        holdings = state.holdings
        stale = stale_input(view, Feed.WALLETS, state.feeds.get(Feed.WALLETS), p.max_wallet_age)
        if stale is not None:
            return stale
        oldest = holdings.oldest_liability()
        if oldest is None:
            return unknown(
                f"no customer_liability figure has arrived for {state.exchange} yet",
                missing="customer_liability",
            )
        stated, asset = oldest
        stale = figure_too_old(view, f"customer_liability {asset}", stated, p.max_liability_age)
        if stale is not None:
            return stale
        cover = holdings.segregation
        if cover.unreported:
            # The ledger and wallet feeds arrive independently (at start-up, liabilities
            # often come before the first snapshots): a liability with no customer wallet
            # snapshot of its asset at all is a missing input, not a shortfall. A wallet
            # emptied to zero is reported, and judged.
            names = sorted(cover.unreported)
            return unknown(
                "no wallet snapshot of customer " + ", ".join(names) + " has arrived for "
                f"{state.exchange} yet, though the ledger says customers are owed it",
                unreported=names,
            )
        if cover.unstated:
            names = sorted(cover.unstated)
            return unknown(
                "customer crypto is held in " + ", ".join(names) + " but no customer_liability "
                "figure says what is owed in it; send one per asset",
                unstated=names,
            )
        if cover.unpriced:
            names = sorted(cover.unpriced)
            return unknown(
                "customer liabilities cannot be valued: no price for " + ", ".join(names),
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
                "The ledger owes customers no crypto; nothing needs to be segregated.",
                {"liability_value": "0", "short_assets": {}},
            )
        ratio, worst_asset = worst
        listed, left_out = short_assets(view, cover, "customer_holdings", "owed")
        evidence: dict[str, Any] = {
            "liability_value": money_text(required),
            "covered_value": money_text(available),
            "worst_asset": worst_asset,
            "worst_ratio": ratio_text(ratio),
            "short_assets": listed,
        }
        if left_out:
            evidence["short_assets_not_listed"] = left_out
        if cover.short:
            reason = (
                f"Customer wallets hold less than is owed to customers in "
                f"{short_text(listed, left_out)} (worth {amount_text(shortfall, currency)} "
                f"now); find where the crypto went, return it to customer wallets and "
                f"reconcile the ledger."
            )
        elif self.thresholds.level(ratio) is Status.WARNING:
            reason = (
                f"Every asset owed to customers is held, but {worst_asset} only at "
                f"{percent_text(ratio)} of what is owed, under the "
                f"{percent_text(self.thresholds.warning_below)} early-warning level; "
                f"reconcile it before the next withdrawals."
            )
        else:
            reason = (
                f"Customer wallets hold what is owed to customers in every asset "
                f"(lowest: {worst_asset} at {percent_text(ratio)})."
            )
        return Assessment(required, available, ratio, shortfall, reason, evidence)
