"""The assessment shared by the per-asset coverage rules (guarantee, segregation).

Both hold one quantity against another asset by asset, read from an
:class:`~monitor.core.state.coverage.AssetCoverage` kept current by the holdings, and
differ only in what they call their two sides and what they ask a person to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from monitor.core.money import (
    ZERO,
    amount_text,
    decimal_text,
    money_text,
    percent_text,
    ratio_text,
)
from monitor.core.rules.base import (
    Assessment,
    ExchangeView,
    Explanation,
    prices_fresh,
    stale_prices,
    unknown,
)
from monitor.core.rules.inputs import short_assets, short_text
from monitor.core.state.coverage import RATIO_CAP, AssetCoverage
from monitor.core.status import Status, Thresholds


@dataclass(frozen=True, slots=True)
class CoverageWording:
    """What a coverage rule calls its parts; the reasons are ``str.format`` templates.

    ``short`` gets ``assets`` and ``worth``; ``warning`` gets ``asset``, ``ratio`` and
    ``level``; ``ok`` gets ``asset`` and ``ratio``.
    """

    unvalued: str  # what cannot be valued without a price
    nothing_needed: str  # the reason when nothing needs covering
    required_key: str  # evidence key of the required value
    available_key: str  # evidence key of the covered value
    have: str  # short-asset evidence label of what is held
    need: str  # short-asset evidence label of what is needed
    short: str
    warning: str
    ok: str


def coverage_ratio(view: ExchangeView, cover: AssetCoverage, max_price_age: timedelta) -> Any:
    """The worst ratio :func:`assess_coverage` would give, or None when it might be unknown."""
    if cover.unpriced or not prices_fresh(view, max_price_age):
        return None
    worst = cover.worst()
    return RATIO_CAP if worst is None else worst[0]


def assess_coverage(
    view: ExchangeView,
    cover: AssetCoverage,
    thresholds: Thresholds,
    max_price_age: timedelta,
    wording: CoverageWording,
) -> Assessment:
    """The assessment of ``cover`` once the rule's own inputs were found present."""
    if cover.unpriced:
        names = sorted(cover.unpriced)
        return unknown(
            f"{wording.unvalued} cannot be valued: no price for " + ", ".join(names),
            unpriced=names,
        )
    stale = stale_prices(view, max_price_age)
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
            wording.nothing_needed,
            {wording.required_key: "0", "short_assets": {}},
        )
    ratio, worst_asset = worst
    # read now: the cover changes after this evaluation, the words come later
    listed, left_out = short_assets(view, cover, wording.have, wording.need)
    short = bool(cover.short)
    # the two quantities the worst ratio divides
    worst_quantities = {
        wording.need: cover.required.get(worst_asset, ZERO),
        wording.have: cover.held.get(worst_asset, ZERO),
    }

    def explain() -> Explanation:
        evidence: dict[str, Any] = {
            wording.required_key: money_text(required),
            wording.available_key: money_text(available),
            "worst_asset": worst_asset,
            "worst_ratio": ratio_text(ratio),
            "worst_asset_quantities": {k: decimal_text(q) for k, q in worst_quantities.items()},
            "short_assets": listed,
        }
        if left_out:
            evidence["short_assets_not_listed"] = left_out
        if short:
            reason = wording.short.format(
                assets=short_text(listed, left_out), worth=amount_text(shortfall, currency)
            )
        elif thresholds.level(ratio) is Status.WARNING:
            reason = wording.warning.format(
                asset=worst_asset,
                ratio=percent_text(ratio),
                level=percent_text(thresholds.warning_below),
            )
        else:
            reason = wording.ok.format(asset=worst_asset, ratio=percent_text(ratio))
        return reason, evidence

    return Assessment(required, available, ratio, shortfall, explain)
