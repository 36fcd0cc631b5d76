"""Reading a rule's inputs: figure ages, currency conversion, insurance, text forms.

Helpers shared by the rules. Each either yields the input or an ``unknown``
:class:`~monitor.core.rules.base.Assessment` that says which input is missing
or stale, so a rule reads as a list of its inputs followed by its arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Final

from monitor.core.money import MONEY_CONTEXT, ZERO, decimal_text, duration_text, money_text
from monitor.core.rules.base import INSTANT, Assessment, ExchangeView, unknown
from monitor.core.state.coverage import AssetCoverage

_ctx: Final = MONEY_CONTEXT
# how many short assets an assessment names; the rest are counted
SHORT_ASSETS_LISTED: Final = 20


def figure_too_old(
    view: ExchangeView, figure: str, stated: datetime, max_age: timedelta
) -> Assessment | None:
    """``unknown`` when the ``figure`` stated at ``stated`` is older than ``max_age``."""
    age = view.now - stated
    view.until(stated + max_age + INSTANT)
    if age > max_age:
        return unknown(
            f"the {figure} figure of {view.state.exchange} is {duration_text(age)} old, "
            f"older than the {duration_text(max_age)} this rule allows; send a current one",
            figure=figure,
            stated=stated.isoformat(),
        )
    return None


def to_reporting(
    view: ExchangeView, amount: Decimal, currency: str, max_price_age: timedelta | None, what: str
) -> Decimal | Assessment:
    """``amount`` of ``currency`` in the reporting currency, or why it cannot be converted.

    ``max_price_age`` None takes the latest price of any age.
    """
    valuer = view.valuer
    if currency == valuer.reporting_currency:
        return amount
    price = valuer.latest.get(currency)
    if price is None:
        return unknown(
            f"no market.prices price of {currency} converts {what} into "
            f"{valuer.reporting_currency}",
            missing=f"price of {currency}",
        )
    age = view.now - price.ts
    if max_price_age is not None:
        view.until(price.ts + max_price_age + INSTANT)
    if max_price_age is not None and age > max_price_age:
        return unknown(
            f"the price of {currency} that converts {what} is {duration_text(age)} old, "
            f"older than the {duration_text(max_price_age)} this rule allows",
            stale=f"price of {currency}",
            last_seen=price.ts.isoformat(),
        )
    return _ctx.multiply(amount, price.price)


@dataclass(slots=True)
class Insurance:
    """Insurance that counts now, and the policies left out with the reason."""

    counted: Decimal = ZERO
    policies: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)


def insurance_cover(
    view: ExchangeView,
    max_price_age: timedelta | None,
    min_term: timedelta | None = None,
    *,
    at: datetime | None = None,
    strict: bool = True,
) -> Insurance | Assessment:
    """The coverage of every policy in force (and of at least ``min_term``), converted.

    In force at ``at`` (default: now), at today's prices. A policy that cannot be
    converted makes the whole ``unknown`` when ``strict``; otherwise it is left out
    with the reason (a foresight must not rest on a policy it cannot value).
    """
    cover = Insurance()
    moment = view.now if at is None else at
    for policy in sorted(view.state.ledger.insurance.values(), key=lambda p: p.policy_id):
        # a policy starts or ends counting at these times
        view.until(policy.valid_from)
        view.until(policy.valid_to)
        if not policy.in_force(moment):
            cover.excluded[policy.policy_id] = (
                f"not in force ({policy.valid_from.isoformat()} to {policy.valid_to.isoformat()})"
            )
            continue
        term = policy.valid_to - policy.valid_from
        if min_term is not None and term < min_term:
            cover.excluded[policy.policy_id] = (
                f"term of {duration_text(term)} is shorter than {duration_text(min_term)}"
            )
            continue
        coverage = to_reporting(
            view, policy.coverage, policy.currency, max_price_age, f"insurance {policy.policy_id}"
        )
        if isinstance(coverage, Assessment):
            if strict:
                return coverage
            cover.excluded[policy.policy_id] = coverage.reason
            continue
        cover.counted = _ctx.add(cover.counted, coverage)
        cover.policies[policy.policy_id] = money_text(coverage)
    return cover


def short_assets(
    view: ExchangeView, cover: AssetCoverage, held_name: str, required_name: str
) -> tuple[dict[str, dict[str, str]], int]:
    """Up to :data:`SHORT_ASSETS_LISTED` short assets of ``cover``, and how many were left out.

    The assets listed are the longest-standing shortages (the set keeps the order
    in which assets became short), largest value first; the total is in the
    assessment's ``shortfall`` either way. So the cost does not grow with the
    number of short assets, however many there are.
    """
    prices = view.valuer.prices

    def value(asset: str) -> Decimal:
        return _ctx.multiply(cover.short[asset], prices.get(asset, ZERO))

    chosen = sorted(
        islice(cover.short, SHORT_ASSETS_LISTED), key=lambda asset: (-value(asset), asset)
    )
    listed = {
        asset: {
            required_name: decimal_text(cover.required.get(asset, ZERO)),
            held_name: decimal_text(cover.held.get(asset, ZERO)),
            "short": decimal_text(cover.short[asset]),
            "short_value": money_text(value(asset)),
        }
        for asset in chosen
    }
    return listed, len(cover.short) - len(listed)


def short_text(listed: dict[str, dict[str, str]], left_out: int) -> str:
    """``BTC by 400, ETH by 2.5`` (and how many more)."""
    text = ", ".join(f"{asset} by {row['short']}" for asset, row in listed.items())
    return text + (f" and {left_out} more assets" if left_out else "")
