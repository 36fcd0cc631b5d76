"""Adequacy reports: where each exchange stands on each of its rules, now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from monitor.core.engine import Engine
from monitor.core.money import (
    decimal_text,
    duration_text,
    money_text,
    optional_text,
    ratio_text,
    rfc3339,
)
from monitor.core.rules.base import ExchangeView
from monitor.core.state import Feed
from monitor.core.state.exchange import Exchange
from monitor.core.status import Status, Thresholds


@dataclass(frozen=True, slots=True)
class RuleReport:
    rule: str
    status: Status
    ratio: Decimal | None
    required: Decimal | None
    available: Decimal | None
    shortfall: Decimal | None
    reason: str
    evidence: dict[str, Any]
    thresholds: Thresholds | None = None


@dataclass(frozen=True, slots=True)
class AdequacyReport:
    """The latest adequacy of one exchange."""

    exchange: str
    as_of: datetime
    currency: str
    rules: tuple[RuleReport, ...]
    trading_volume: Decimal
    volume_window: str
    feeds: dict[str, datetime]

    @property
    def worst(self) -> Status:
        statuses = {r.status for r in self.rules}
        for status in (Status.BREACH, Status.UNKNOWN, Status.WARNING):
            if status in statuses:
                return status
        return Status.OK

    def to_document(self) -> dict[str, Any]:
        """The JSON form published on ``reserve.adequacy`` and served on ``/status``."""
        return {
            "exchange": self.exchange,
            "as_of": rfc3339(self.as_of),
            "currency": self.currency,
            "status": self.worst.value,
            "trading_volume": {
                "window": self.volume_window,
                "amount": money_text(self.trading_volume),
            },
            "feeds": {feed: rfc3339(moment) for feed, moment in sorted(self.feeds.items())},
            "rules": [rule_document(r) for r in self.rules],
        }


def rule_document(report: RuleReport) -> dict[str, Any]:
    document = {
        "rule": report.rule,
        "status": report.status.value,
        "ratio": optional_text(report.ratio, ratio_text),
        "required": optional_text(report.required),
        "available": optional_text(report.available),
        "shortfall": optional_text(report.shortfall),
        "reason": report.reason,
        "evidence": report.evidence,
    }
    if report.thresholds is not None:
        # the levels the ratio is judged against, so a reader can follow the status
        t = report.thresholds
        document["thresholds"] = {
            "breach_below": decimal_text(t.breach_below),
            "warning_below": decimal_text(t.warning_below),
            "hysteresis": decimal_text(t.hysteresis),
        }
    return document


def adequacy_report(engine: Engine, exchange: str) -> AdequacyReport:
    """The report of ``exchange`` as of its own clock: its statuses, measured afresh.

    The statuses are those last judged; the figures are measured now, since a
    rule whose inputs did not change since it last ran was not run again.
    """
    state = engine.exchanges[exchange]
    moment = state.clock
    assert moment is not None
    view = ExchangeView(state, state.valuer, moment)
    rules = []
    for rule in engine.rules_of(exchange):
        held = state.rules.get(rule.id)
        a = rule.assess(view)
        rules.append(
            RuleReport(
                rule.id,
                held.status if held else Status.UNKNOWN,
                a.ratio,
                a.required,
                a.available,
                a.shortfall,
                a.reason,
                a.evidence,
                rule.thresholds,
            )
        )
    return AdequacyReport(
        exchange,
        moment,
        engine.policy.reporting_currency,
        tuple(rules),
        state.trading_volume(moment),
        duration_text(state.volume.window),
        feed_times(state),
    )


def feed_times(state: Exchange) -> dict[str, datetime]:
    """When each feed of an exchange last spoke; prices: the newest it is valued at."""
    stated = [price.ts for price in state.valuer.latest.values()]
    if not stated:
        return dict(state.feeds)
    return {**state.feeds, Feed.PRICES: max(stated)}


def adequacy_table(reports: list[AdequacyReport]) -> str:
    """A plain-text table of every rule of every exchange, for people."""
    header = ("exchange", "rule", "status", "ratio", "required", "available", "shortfall")
    rows = [header]
    for report in sorted(reports, key=lambda r: r.exchange):
        for r in report.rules:
            rows.append(
                (
                    report.exchange,
                    r.rule,
                    r.status.value.upper(),
                    optional_text(r.ratio, ratio_text) or "-",
                    _grouped(r.required),
                    _grouped(r.available),
                    _grouped(r.shortfall),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    currency = reports[0].currency if reports else ""
    return "\n".join(lines) + (f"\n(amounts in {currency})" if currency else "")


def _grouped(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.quantize(Decimal(1)):,}"
