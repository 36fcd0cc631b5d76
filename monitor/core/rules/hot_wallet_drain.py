"""``ops.hot_wallet_drain``: a fast fall of hot-wallet value, the earliest theft signal.

The value of everything in hot wallets (customer, guarantee and house: a thief
takes whatever keys are online) is compared with its peak within the trailing
``window`` (:class:`~monitor.core.state.peaks.PeakWindow`, kept by the engine on every
evaluation in O(1) amortised).

* ``ratio``: hot value now / peak in the window (1 when it did not fall; higher
  is better, like every other rule). Breach under ``1 - max_drop_share``,
  warning under ``1 - warning_drop_share``.
* ``required``: ``(1 - max_drop_share) x peak``, the least hot value that is not
  a breach; ``available``: the hot value now; ``shortfall``: the difference.
  The fall itself is in the evidence (``drop_value``, ``drop_share``).

A fall stays in the window for ``window`` after it happened, so a top-up does
not clear the alert at once: it is the signal that something left the hot
wallets, not a measure of cover (``jp.segregation`` and the reserves judge that).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import Field

from monitor.core.money import (
    MONEY_CONTEXT,
    ONE,
    ZERO,
    amount_text,
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
_divide: Final = MONEY_CONTEXT.divide  # bound once: a C static, compiled


class HotWalletDrainParams(Params):
    """``ops.hot_wallet_drain``: the largest fall of hot-wallet value allowed within ``window``."""

    window: "Duration"
    max_drop_share: "Annotated[Number, Field(gt=0, lt=1)]"
    warning_drop_share: "Annotated[Number, Field(gt=0, lt=1)]"
    hysteresis: "Number"
    max_wallet_age: "Duration"
    max_price_age: "Duration"

    @consistent
    def _consistent(self) -> None:
        if self.warning_drop_share > self.max_drop_share:
            raise ValueError("warning_drop_share must not be over max_drop_share")


class HotWalletDrain:
    """Hot-wallet value does not fall by more than ``max_drop_share`` within ``window``."""

    id = "ops.hot_wallet_drain"

    def __init__(self, params: HotWalletDrainParams) -> None:
        self.params = params
        self.thresholds = Thresholds(
            ONE - params.max_drop_share, ONE - params.warning_drop_share, params.hysteresis
        )
        self.breach_for = params.breach_for
        self.reads = Inputs.WALLETS | Inputs.PRICES
        self._window_text = duration_text(params.window)
        # read at every price moment by the direct path: a native attribute, where a
        # pydantic model's field is a generic attribute lookup
        self._max_price_age: timedelta = params.max_price_age

    def quick_ratio(self, view: ExchangeView) -> Decimal | None:
        """Hot value now against its peak, when every input is known (see ``QuickRule``)."""
        state = view.state
        peaks = state.hot_peaks
        if peaks is None or state.holdings.unpriced:
            return None
        if not prices_fresh(view, self._max_price_age):
            return None
        peaks.advance(view.now)
        peak_level = peaks.peak()
        if peak_level is None:
            return None
        leaves = peaks.peak_leaves()
        if leaves is not None:
            view.until(leaves + INSTANT)
        current = state.holdings.hot_value()
        peak = max(peak_level.value, current)
        return _divide(current, peak) if peak > 0 else ONE

    def assess(self, view: ExchangeView) -> Assessment:
        p, state = self.params, view.state
        stale = stale_input(view, Feed.WALLETS, state.feeds.get(Feed.WALLETS), p.max_wallet_age)
        if stale is not None:
            return stale
        if state.holdings.unpriced:
            names = sorted(state.holdings.unpriced)
            return unknown(
                "hot-wallet value is incomplete: no price for " + ", ".join(names),
                unpriced=names,
            )
        stale = stale_prices(view, p.max_price_age)
        if stale is not None:
            return stale
        peaks = state.hot_peaks
        if peaks is not None:
            peaks.advance(view.now)  # levels over before the window leave it
        peak_level = peaks.peak() if peaks is not None else None
        leaves = peaks.peak_leaves() if peaks is not None else None
        if leaves is not None:
            view.until(leaves + INSTANT)  # a lower level may be the peak then
        if peak_level is None:
            return unknown(f"no hot-wallet value of {state.exchange} has been observed yet")

        currency = view.valuer.reporting_currency
        current = state.holdings.hot_value()
        peak = max(peak_level.value, current)
        drop = _ctx.subtract(peak, current)
        ratio = _ctx.divide(current, peak) if peak > 0 else ONE
        drop_share = _ctx.subtract(ONE, ratio)
        required = _ctx.multiply(self.thresholds.breach_below, peak)
        shortfall = max(ZERO, _ctx.subtract(required, current))
        horizon = view.now - p.window
        falls = [fall.document for fall in state.hot_falls if fall.ts >= horizon]
        level, peak_since = self.thresholds.level(ratio), peak_level.start

        def explain() -> Explanation:
            hot_text, peak_text = amount_text(current, currency), amount_text(peak, currency)
            drop_text, window_text = percent_text(drop_share), self._window_text
            evidence = {
                "hot_value": money_text(current),
                "peak_hot_value": money_text(peak),
                "peak_since": peak_since.isoformat(),
                "drop_value": money_text(drop),
                "drop_share": percent_text(drop_share, places=1),
                "window": window_text,
                "hot_wallet_falls": falls,
            }
            if peak <= 0:
                reason = f"Nothing has been in hot wallets within {window_text}."
            elif level is Status.OK:
                reason = (
                    f"Hot-wallet value is {hot_text}, {drop_text} under its peak within "
                    f"{window_text} (early warning at {percent_text(p.warning_drop_share)})."
                )
            else:
                fell = (
                    f"Hot-wallet value fell {drop_text} within {window_text}, from {peak_text} to "
                    f"{hot_text}{self._wallets(falls)}"
                )
                if level is Status.BREACH:
                    reason = (
                        f"{fell}, more than the {percent_text(p.max_drop_share)} allowed; "
                        f"check for transfers you did not make and, if there are any, stop "
                        f"withdrawals and move what is left in hot wallets to cold storage."
                    )
                else:
                    reason = (
                        f"{fell}, more than the {percent_text(p.warning_drop_share)} early-warning "
                        f"level; check that the latest transfers out of hot wallets are yours."
                    )
            return reason, evidence

        return Assessment(required, current, ratio, shortfall, explain)

    @staticmethod
    def _wallets(falls: list[dict[str, Any]]) -> str:
        if not falls:
            return " with no hot wallet's balance falling (prices moved)"
        largest = sorted(falls, key=lambda f: -Decimal(f["value"]))[:3]
        named = ", ".join(
            f"{f['wallet']} {f['asset']} {f['before']} → {f['after']}" for f in largest
        )
        return f" (largest falls: {named})"


register(
    RuleSpec(
        "ops.hot_wallet_drain",
        pack="ops",
        params="hot_wallet_drain",
        order=80,
        build=lambda params, pack: HotWalletDrain(params),
    )
)
