"""``jp.segregation``: customer crypto held against what is owed to customers.

Per asset, the ``customer`` wallet holdings in any custody must be at least the
customer liability the ledger states (``customer_liability``).

* ``ratio``: the worst asset's customer holdings / liability (judges the status;
  a surplus in one asset never hides a shortfall in another). With nothing owed
  the ratio is reported as the cap (:data:`~monitor.core.state.coverage.RATIO_CAP`).
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

from datetime import timedelta
from decimal import Decimal
from typing import Final, Literal

from monitor.core.rules.asset_coverage import CoverageWording, assess_coverage, coverage_ratio
from monitor.core.rules.base import (
    INSTANT,
    Assessment,
    ExchangeView,
    Inputs,
    stale_input,
    unknown,
)
from monitor.core.rules.inputs import figure_too_old
from monitor.core.rules.params import Duration, Number, Params, consistent, ordered
from monitor.core.rules.registry import RuleSpec, register
from monitor.core.state import Feed
from monitor.core.status import Thresholds


class SegregationParams(Params):
    """``jp.segregation``: per asset, customer holdings / customer liabilities."""

    breach_below: "Number"
    warning_below: "Number"
    hysteresis: "Number"
    max_wallet_age: "Duration"
    max_liability_age: "Duration"
    max_price_age: "Duration"

    @consistent
    def _consistent(self) -> None:
        ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")


CoverComponent = Literal["reserve_fund", "insurance", "guarantee"]


class Segregation:
    """Segregated customer crypto of at least what the exchange owes, asset by asset."""

    id = "jp.segregation"

    def __init__(self, params: SegregationParams) -> None:
        self.params = params
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)
        self.breach_for = params.breach_for
        self.reads = Inputs.WALLETS | Inputs.LEDGER | Inputs.PRICES  # prices: their age
        # read at every wallet moment by the direct path: native attributes, where a
        # pydantic model's field is a generic attribute lookup
        self._max_liability_age: timedelta = params.max_liability_age
        self._max_price_age: timedelta = params.max_price_age

    def unchanged(self, view: ExchangeView, before: Assessment, changed: int) -> bool:
        """Only prices moved, and the rule was known: its ratio is one of quantities.

        A newer price can make a stale input fresh (``before`` was unknown then),
        never a fresh one stale; the values it moves are measured when read.
        """
        return changed == Inputs.PRICES and before.ratio is not None

    def quick_ratio(self, view: ExchangeView) -> Decimal | None:
        """The worst segregation ratio, when every input is known (see ``QuickRule``)."""
        holdings = view.state.holdings
        oldest = holdings.oldest_liability()
        if oldest is None:
            return None
        fresh_until = oldest[0] + self._max_liability_age
        if view.now > fresh_until:
            return None
        view.until(fresh_until + INSTANT)
        cover = holdings.segregation
        if cover.unreported or cover.unstated:
            return None
        ratio: Decimal | None = coverage_ratio(view, cover, self._max_price_age)
        return ratio

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
        return assess_coverage(view, cover, self.thresholds, p.max_price_age, _WORDING)


_WORDING: Final = CoverageWording(
    unvalued="customer liabilities",
    nothing_needed="The ledger owes customers no crypto; nothing needs to be segregated.",
    required_key="liability_value",
    available_key="covered_value",
    have="customer_holdings",
    need="owed",
    short=(
        "Customer wallets hold less than is owed to customers in {assets} (worth {worth} "
        "now); find where the crypto went, return it to customer wallets and reconcile "
        "the ledger."
    ),
    warning=(
        "Every asset owed to customers is held, but {asset} only at {ratio} of what is "
        "owed, under the {level} early-warning level; reconcile it before the next "
        "withdrawals."
    ),
    ok=(
        "Customer wallets hold what is owed to customers in every asset "
        "(lowest: {asset} at {ratio})."
    ),
)


register(
    RuleSpec(
        "jp.segregation",
        pack="jp",
        params="segregation",
        order=40,
        build=lambda params, pack: Segregation(params),
    )
)
