"""The worker's Prometheus metrics, on an injected registry.

Contract section 7 names what the rules look like from outside (required,
available, shortfall, ratio and status per exchange and rule, volume, feed
ages, events, alerts, event lag). The worker's own health comes on top:
``reserve_monitor_deadletters_total`` (rejected input),
``reserve_monitor_consumer_lag_records`` (records behind the end of each input
partition this worker reads), ``reserve_monitor_restore_seconds`` (each task's
last restore) and ``reserve_monitor_evaluation_seconds`` (time the engine takes
to take an event in, or to judge the exchanges gone quiet).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.core.engine import Outcome
from monitor.core.events import Topic
from monitor.core.output.report import AdequacyReport
from monitor.core.status import Status

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# one event is tens of microseconds; a tick re-evaluates every exchange at once
_EVALUATION_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1,
)
# the ``trigger`` of an evaluation no input record caused: the moments of exchanges
# whose input went quiet
SETTLE = "settle"


class PartitionLag(NamedTuple):
    """How many messages of one input partition the worker has yet to process."""

    topic: str
    partition: int
    lag: int


@dataclass(frozen=True)
class MonitorMetrics:
    """Every metric the worker exports; build with :func:`create`."""

    registry: CollectorRegistry
    reports: ReportGauges
    feed_age: Gauge
    events: Counter
    alerts: Counter
    event_lag: PlainHistogram
    deadletters: Counter
    moments: Counter
    out_of_order: Counter
    consumer_lag: Gauge
    restore_seconds: Gauge
    evaluation: Histogram

    def record_report(self, report: AdequacyReport) -> None:
        """Set the gauges of one exchange from its latest adequacy report."""
        self.reports.record(report)
        self.record_feed_ages(report.exchange, report.feeds, report.as_of)

    def record_feed_ages(self, exchange: str, feeds: Mapping[str, datetime], now: datetime) -> None:
        """How old each feed of ``exchange`` is at ``now``.

        The worker passes its own clock (the newest event time it has seen, moved on
        by wall time), on every tick, for every exchange it owns: a feed that went
        silent shows its age growing, which the exchange's own clock, stopped with
        its records, would not (CONTRACT section 8, outside the guarantee).
        """
        for feed, moment in feeds.items():
            self.feed_age.labels(exchange, feed).set(max(0.0, (now - moment).total_seconds()))

    def retain_exchanges(self, exchanges: Collection[str]) -> None:
        """Drop every series of an exchange not in ``exchanges``.

        After a rebalance another worker owns those exchanges and exports them;
        a copy frozen here would keep a settled breach firing.
        """
        self.reports.retain(exchanges)
        for labels in _series(self.feed_age):
            if labels["exchange"] not in exchanges:
                self.feed_age.remove(*labels.values())

    def record_consumer_lag(self, lags: Iterable[PartitionLag]) -> None:
        """Replace the lag series with ``lags``: partitions no longer owned disappear."""
        self.consumer_lag.clear()
        for topic, partition, lag in lags:
            self.consumer_lag.labels(topic, str(partition)).set(lag)


def _series(metric: Gauge) -> list[dict[str, str]]:
    """The label sets of ``metric``'s current series, in its label order."""
    seen: dict[tuple[str, ...], dict[str, str]] = {}
    for family in metric.collect():
        for sample in family.samples:
            seen.setdefault(tuple(sample.labels.values()), sample.labels)
    return list(seen.values())


class ReportGauges(Collector):
    """The gauges read off each exchange's latest adequacy report, made when scraped.

    Required, available, shortfall, coverage ratio and rule status per exchange and
    rule, and the trading volume. The worker reports every exchange it judged on every
    tick, and Prometheus scrapes every 15 s or so: keeping the report and making the
    series at the scrape costs one dict entry a report instead of some hundred label
    look-ups. An unknown measure has no series rather than a stale one.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._reports: dict[str, AdequacyReport] = {}
        registry.register(self)

    def record(self, report: AdequacyReport) -> None:
        self._reports[report.exchange] = report

    def retain(self, exchanges: Collection[str]) -> None:
        for exchange in [e for e in self._reports if e not in exchanges]:
            del self._reports[exchange]

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        required, available, shortfall, ratio, status, volume = self._families()
        for report in list(self._reports.values()):
            ex, currency = report.exchange, report.currency
            for rule in report.rules:
                money = [ex, rule.rule, currency]
                for family, measure in (
                    (required, rule.required),
                    (available, rule.available),
                    (shortfall, rule.shortfall),
                ):
                    if measure is not None:
                        family.add_metric(money, float(measure))
                if rule.ratio is not None:
                    ratio.add_metric([ex, rule.rule], float(rule.ratio))
                for each in Status:
                    status.add_metric([ex, rule.rule, each.value], 1 if each is rule.status else 0)
            volume.add_metric([ex, report.volume_window, currency], float(report.trading_volume))
        yield from (required, available, shortfall, ratio, status, volume)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        money = ["exchange", "rule", "currency"]
        return (
            GaugeMetricFamily(
                "reserve_monitor_required",
                "What the rule requires, in the reporting currency",
                labels=money,
            ),
            GaugeMetricFamily(
                "reserve_monitor_available", "What counts towards the requirement", labels=money
            ),
            GaugeMetricFamily(
                "reserve_monitor_shortfall", "What must be added to be compliant", labels=money
            ),
            GaugeMetricFamily(
                "reserve_monitor_coverage_ratio",
                "available / required (for share rules, the share)",
                labels=["exchange", "rule"],
            ),
            GaugeMetricFamily(
                "reserve_monitor_rule_status",
                "1 for the rule's current status",
                labels=["exchange", "rule", "status"],
            ),
            GaugeMetricFamily(
                "reserve_monitor_trading_volume",
                "Trading volume over the window",
                labels=["exchange", "window", "currency"],
            ),
        )


class PlainHistogram(Collector):
    """A histogram with one label kept as plain counts, its samples made when scraped.

    For ``reserve_monitor_event_lag_seconds``, observed once for every input record:
    prometheus_client's ``Histogram`` takes a lock twice an observation (2.6 µs
    measured, some 6% of the worker's time). The worker observes from its event
    loop's one thread, where the scrape runs too, so plain counts suffice.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._documentation, self._label = name, documentation, label
        self._bounds = list(buckets)
        self._series: dict[str, HistogramSeries] = {}
        registry.register(self)

    def labels(self, value: str) -> HistogramSeries:
        series = self._series.get(value)
        if series is None:
            series = self._series[value] = HistogramSeries(self._bounds)
        return series

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=[self._label])]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        edges = [*map(floatToGoString, self._bounds), "+Inf"]
        for value, series in self._series.items():
            cumulative, buckets = 0, []
            for edge, count in zip(edges, series.counts, strict=True):
                cumulative += count
                buckets.append((edge, float(cumulative)))
            family.add_metric([value], buckets, series.sum)
        yield family


class HistogramSeries:
    """One label value's counts: a value goes to the first bucket whose bound it does not
    exceed (Prometheus' ``le``), or past the last."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: list[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value


def create(registry: CollectorRegistry) -> MonitorMetrics:
    """Register the worker's metrics on ``registry`` (never the global one)."""
    metrics = MonitorMetrics(
        registry=registry,
        reports=ReportGauges(registry),
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
        event_lag=PlainHistogram(
            "reserve_monitor_event_lag_seconds",
            "Processing time minus event time of input events",
            "topic",
            _LAG_BUCKETS,
            registry,
        ),
        deadletters=Counter(
            "reserve_monitor_deadletters",
            "Messages sent to the dead-letter topic",
            ["topic"],
            registry=registry,
        ),
        moments=Counter(
            "reserve_monitor_moments",
            "Moments judged: an exchange judged by its rules at one of its own event times",
            registry=registry,
        ),
        out_of_order=Counter(
            "reserve_monitor_records_out_of_order",
            "Input records taken after a record appended later: a partition waited for "
            "longer than RESERVE_MONITOR_MAX_IDLE_SECONDS, or a broker's clock ahead of the "
            "worker's; the changes that follow may differ from replay's",
            registry=registry,
        ),
        consumer_lag=Gauge(
            "reserve_monitor_consumer_lag_records",
            "Records of each owned input partition not yet processed (log end - position)",
            ["topic", "partition"],
            registry=registry,
        ),
        restore_seconds=Gauge(
            "reserve_monitor_restore_seconds",
            "Duration of the task's last restore: its producer started (the previous owner "
            "fenced), its changelog read to the end and its state rebuilt",
            ["task"],
            registry=registry,
        ),
        evaluation=Histogram(
            "reserve_monitor_evaluation_seconds",
            "Time the engine takes to take in one input event and judge the moments it "
            "closes (trigger: its topic), or to judge the exchanges gone quiet (settle)",
            ["trigger"],
            buckets=_EVALUATION_BUCKETS,
            registry=registry,
        ),
    )
    # Every known series starts at 0, so the first dead letter after a start is an
    # increase Prometheus can see (a series born at 1 has no increase) and the
    # dashboards' rates exist before the first message.
    for topic in Topic:
        metrics.deadletters.labels(topic.value)
        metrics.event_lag.labels(topic.value)
        metrics.evaluation.labels(topic.value)
        for outcome in Outcome:
            metrics.events.labels(topic.value, outcome.value)
    metrics.evaluation.labels(SETTLE)
    return metrics
