"""The worker's Prometheus metrics (contract section 7), on an injected registry."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.core.report import AdequacyReport
from monitor.core.status import Status

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


@dataclass(frozen=True)
class MonitorMetrics:
    """Every metric the worker exports; build with :func:`create`."""

    registry: CollectorRegistry
    required: Gauge
    available: Gauge
    shortfall: Gauge
    coverage_ratio: Gauge
    rule_status: Gauge
    trading_volume: Gauge
    feed_age: Gauge
    events: Counter
    alerts: Counter
    event_lag: Histogram
    deadletters: Counter

    def record_report(self, report: AdequacyReport) -> None:
        """Set the gauges of one exchange from its latest adequacy report."""
        ex, currency = report.exchange, report.currency
        for rule in report.rules:
            _set_or_clear(self.required, (ex, rule.rule, currency), rule.required)
            _set_or_clear(self.available, (ex, rule.rule, currency), rule.available)
            _set_or_clear(self.shortfall, (ex, rule.rule, currency), rule.shortfall)
            _set_or_clear(self.coverage_ratio, (ex, rule.rule), rule.ratio)
            for status in Status:
                self.rule_status.labels(ex, rule.rule, status.value).set(
                    1 if status is rule.status else 0
                )
        self.trading_volume.labels(ex, report.volume_window, currency).set(
            float(report.trading_volume)
        )
        for feed, moment in report.feeds.items():
            age = (report.as_of - moment).total_seconds()
            self.feed_age.labels(ex, feed).set(max(0.0, age))


def _set_or_clear(gauge: Gauge, labels: tuple[str, ...], value: Decimal | None) -> None:
    """Set the gauge; an unknown value removes the series rather than report a stale one."""
    if value is not None:
        gauge.labels(*labels).set(float(value))
        return
    with contextlib.suppress(KeyError):  # never set: nothing to clear
        gauge.remove(*labels)


def create(registry: CollectorRegistry) -> MonitorMetrics:
    """Register the worker's metrics on ``registry`` (never the global one)."""
    money = ["exchange", "rule", "currency"]
    return MonitorMetrics(
        registry=registry,
        required=Gauge(
            "reserve_monitor_required",
            "What the rule requires, in the reporting currency",
            money,
            registry=registry,
        ),
        available=Gauge(
            "reserve_monitor_available",
            "What counts towards the requirement",
            money,
            registry=registry,
        ),
        shortfall=Gauge(
            "reserve_monitor_shortfall",
            "What must be added to be compliant",
            money,
            registry=registry,
        ),
        coverage_ratio=Gauge(
            "reserve_monitor_coverage_ratio",
            "available / required (for share rules, the share)",
            ["exchange", "rule"],
            registry=registry,
        ),
        rule_status=Gauge(
            "reserve_monitor_rule_status",
            "1 for the rule's current status",
            ["exchange", "rule", "status"],
            registry=registry,
        ),
        trading_volume=Gauge(
            "reserve_monitor_trading_volume",
            "Trading volume over the window",
            ["exchange", "window", "currency"],
            registry=registry,
        ),
        feed_age=Gauge(
            "reserve_monitor_feed_age_seconds",
            "Event-time age of the newest event of each feed",
            ["exchange", "feed"],
            registry=registry,
        ),
        events=Counter(
            "reserve_monitor_events",
            "Input messages by outcome",
            ["topic", "outcome"],
            registry=registry,
        ),
        alerts=Counter(
            "reserve_monitor_alerts",
            "Status changes published",
            ["rule", "status"],
            registry=registry,
        ),
        event_lag=Histogram(
            "reserve_monitor_event_lag_seconds",
            "Processing time minus event time of input events",
            ["topic"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        ),
        deadletters=Counter(
            "reserve_monitor_deadletters",
            "Messages sent to the dead-letter topic",
            ["topic"],
            registry=registry,
        ),
    )
