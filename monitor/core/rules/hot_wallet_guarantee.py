"""``jp.hot_wallet_guarantee``: guarantee crypto against customer crypto in hot wallets.

Per asset, the exchange's ``guarantee`` holdings (in any custody: the Payment
Services Act wants them kept cold, which is a separate duty) must be at least
the ``customer`` holdings in hot wallets, in the same kind and quantity.

* ``ratio``: the worst asset's guarantee / hot customer quantity. It judges the
  status, so one short asset is a breach however small its value; a surplus in
  one asset never hides a shortfall in another. With no customer crypto in hot
  wallets nothing needs a guarantee and the ratio is reported as the cap
  (:data:`~monitor.core.state.coverage.RATIO_CAP`).
* ``required``: the value of the customer crypto in hot wallets;
  ``available``: the guarantee value, counted per asset up to that asset's need;
  ``shortfall``: Σ over short assets of the missing quantity x its price.

Everything is read from :class:`~monitor.core.state.coverage.AssetCoverage` kept by
the holdings, so an assessment costs O(1) plus the short assets it names.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Final

from monitor.core.rules.asset_coverage import CoverageWording, assess_coverage, coverage_ratio
from monitor.core.rules.base import Assessment, ExchangeView, Inputs, stale_input
from monitor.core.rules.params import Duration, Number, Params, consistent, ordered
from monitor.core.rules.registry import RuleSpec, register
from monitor.core.state import Feed
from monitor.core.status import Thresholds


class HotWalletGuaranteeParams(Params):
    """``jp.hot_wallet_guarantee``: per asset, guarantee holdings / hot customer holdings."""

    breach_below: "Number"
    warning_below: "Number"
    hysteresis: "Number"
    max_wallet_age: "Duration"
    max_price_age: "Duration"

    @consistent
    def _consistent(self) -> None:
        ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")


class HotWalletGuarantee:
    """Performance-guarantee crypto of the same kind and quantity as hot customer crypto."""

    id = "jp.hot_wallet_guarantee"

    def __init__(self, params: HotWalletGuaranteeParams) -> None:
        self.params = params
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)
        self.breach_for = params.breach_for
        self.reads = Inputs.WALLETS | Inputs.PRICES  # prices: their age
        # read at every wallet moment by the direct path: a native attribute, where a
        # pydantic model's field is a generic attribute lookup
        self._max_price_age: timedelta = params.max_price_age

    def unchanged(self, view: ExchangeView, before: Assessment, changed: int) -> bool:
        """Only prices moved, and the rule was known: its ratio is one of quantities.

        A newer price can make a stale input fresh (``before`` was unknown then),
        never a fresh one stale; the values it moves are measured when read.
        """
        return changed == Inputs.PRICES and before.ratio is not None

    def quick_ratio(self, view: ExchangeView) -> Decimal | None:
        """The worst guarantee ratio, when every input is known (see ``QuickRule``)."""
        ratio: Decimal | None = coverage_ratio(
            view, view.state.holdings.guarantee, self._max_price_age
        )
        return ratio

    def assess(self, view: ExchangeView) -> Assessment:
        p, state = self.params, view.state
        stale = stale_input(view, Feed.WALLETS, state.feeds.get(Feed.WALLETS), p.max_wallet_age)
        if stale is not None:
            return stale
        return assess_coverage(
            view, state.holdings.guarantee, self.thresholds, p.max_price_age, _WORDING
        )


_WORDING: Final = CoverageWording(
    unvalued="hot customer crypto",
    nothing_needed="No customer crypto is in hot wallets; nothing needs a guarantee.",
    required_key="hot_customer_value",
    available_key="guaranteed_value",
    have="guarantee",
    need="hot_customer",
    short=(
        "Guarantee crypto is short of the customer crypto in hot wallets in {assets}; "
        "move the exchange's own crypto of the same kind into guarantee wallets "
        "(worth {worth} now) or move the customer crypto to cold storage."
    ),
    warning=(
        "Every asset in hot wallets is guaranteed, but {asset}'s guarantee covers only "
        "{ratio} of its hot customer holdings, under the {level} early-warning level; "
        "add to it before the next deposits arrive."
    ),
    ok=(
        "Guarantee crypto covers the customer crypto in hot wallets in every asset "
        "(lowest: {asset} at {ratio})."
    ),
)


register(
    RuleSpec(
        "jp.hot_wallet_guarantee",
        pack="jp",
        params="hot_wallet_guarantee",
        order=30,
        build=lambda params, pack: HotWalletGuarantee(params),
    )
)
