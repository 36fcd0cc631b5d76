"""The worker's Prometheus metrics, on an injected registry.

Contract section 7 names what the rules look like from outside (required,
available, shortfall, ratio and status per exchange and rule, volume, feed
ages, events, alerts, event lag). The worker's own health comes on top:
``reserve_monitor_deadletters_total`` (rejected input),
``reserve_monitor_consumer_lag_records`` (records behind the end of each input
partition this worker reads), ``reserve_monitor_buffered_records`` (of those, the
ones fetched and waiting in memory), ``reserve_monitor_restore_seconds`` (each task's
last restore) and ``reserve_monitor_evaluation_seconds`` (time the engine takes
to take an event in, or to judge the exchanges gone quiet).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.core.engine import Outcome
from monitor.core.events import Topic
from monitor.core.output.report import AdequacyReport
from monitor.core.status import Status
from monitor.worker.alignment import BUFFERED_PER_PARTITION

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
    """How many messages of one input partition the worker has yet to process, and how
    many of those it holds in memory, fetched (for a price partition: in the task that
    holds most)."""

    topic: str
    partition: int
    lag: int
    buffered: int = 0


@dataclass(frozen=True)
class MonitorMetrics:
    """Every metric the worker exports; build with :func:`create`.

    ``registry`` holds them all; ``own`` all but the per-exchange series, which
    :meth:`page` writes itself (:class:`ExchangeSeries`).
    """

    registry: CollectorRegistry
    own: CollectorRegistry
    exchanges: ExchangeSeries
    events: Counter
    alerts: Counter
    event_lag: PlainHistogram
    deadletters: Counter
    moments: Counter
    out_of_order: Counter
    consumer_lag: Gauge
    buffered: Gauge
    restore_seconds: Gauge
    evaluation: Histogram

    async def page(self) -> bytes:
        """The ``/metrics`` page: every series, in Prometheus' text format."""
        return generate_latest(self.own) + (await self.exchanges.text()).encode()

    def record_report(self, report: AdequacyReport) -> None:
        """Set the gauges of one exchange from its latest adequacy report."""
        self.exchanges.record(report)

    def record_feed_ages(self, exchange: str, feeds: Mapping[str, datetime], now: datetime) -> None:
        """How old each feed of ``exchange`` is at ``now``.

        The worker passes its own clock (the newest event time it has seen, moved on
        by wall time) when scraped, for every exchange it owns: a feed that went
        silent shows its age growing, which the exchange's own clock, stopped with
        its records, would not (CONTRACT section 8, outside the guarantee).
        """
        self.exchanges.record_feed_ages(exchange, feeds, now)

    def retain_exchanges(self, exchanges: Collection[str]) -> None:
        """Drop every series of an exchange not in ``exchanges``.

        After a rebalance another worker owns those exchanges and exports them;
        a copy frozen here would keep a settled breach firing.
        """
        self.exchanges.retain(exchanges)

    def record_consumer_lag(self, lags: Iterable[PartitionLag]) -> None:
        """Replace the lag series with ``lags``: partitions no longer owned disappear."""
        self.consumer_lag.clear()
        self.buffered.clear()
        for topic, partition, lag, buffered in lags:
            self.consumer_lag.labels(topic, str(partition)).set(lag)
            self.buffered.labels(topic, str(partition)).set(buffered)


class ExchangeSeries(Collector):
    """The series of each exchange: the gauges of its latest adequacy report and its feed
    ages, kept as the report and the feed times, and made when scraped.

    Required, available, shortfall, coverage ratio and rule status per exchange and
    rule, the trading volume, and the age of each feed at a given clock. They are
    almost the whole page: some 45 lines an exchange. The worker reports every
    exchange it judged on every tick, and Prometheus scrapes every 15 s or so: keeping
    the report costs one dict entry a report instead of some hundred label look-ups.
    An unknown measure has no series rather than a stale one.

    :meth:`text` writes the page's part of them itself, each exchange's lines kept
    until its report changes, and yields to the event loop as it goes: through
    prometheus_client's ``generate_latest`` 1,000 exchanges took 0.6 s, during which
    the worker took no record and sent no heartbeat. :meth:`collect` gives the same
    series as metric families (read by tests, and by anything that walks a registry).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._reports: dict[str, AdequacyReport] = {}
        # feed times of each exchange and the clock their ages are taken at
        self._feeds: dict[str, tuple[Mapping[str, datetime], datetime]] = {}
        # each exchange's lines of every family of its report, kept while it is current,
        # and the label parts of its lines, quoted once
        self._lines: dict[str, tuple[AdequacyReport, tuple[str, ...]]] = {}
        self._quoted: dict[str, _Quoted] = {}
        registry.register(self)

    def record(self, report: AdequacyReport) -> None:
        self._reports[report.exchange] = report
        self._feeds[report.exchange] = (report.feeds, report.as_of)

    def record_feed_ages(self, exchange: str, feeds: Mapping[str, datetime], now: datetime) -> None:
        self._feeds[exchange] = (feeds, now)

    def retain(self, exchanges: Collection[str]) -> None:
        for held in (self._reports, self._feeds, self._lines, self._quoted):
            for exchange in [e for e in held if e not in exchanges]:
                del held[exchange]

    def describe(self) -> list[Metric]:
        return [*self._families(), _feed_age_family()]

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
        ages = _feed_age_family()
        for exchange, (feeds, now) in list(self._feeds.items()):
            for feed, moment in sorted(feeds.items()):
                ages.add_metric([exchange, feed], _age(moment, now))
        yield from (required, available, shortfall, ratio, status, volume, ages)

    async def text(self, every: int = 200) -> str:
        """The series in the text format ``generate_latest`` writes (version 0.0.4), line
        for line; the event loop runs between every ``every`` exchanges."""
        families = [*self._families(), _feed_age_family()]
        parts: list[list[str]] = [[_header(family)] for family in families]
        report_parts, ages = parts[:-1], parts[-1]
        cached = self._lines
        for n, report in enumerate(list(self._reports.values()), 1):
            held = cached.get(report.exchange)
            if held is None or held[0] is not report:
                quoted = self._quoted_of(report.exchange)
                held = cached[report.exchange] = (report, quoted.report_lines(report))
            for part, lines in zip(report_parts, held[1], strict=True):
                part.append(lines)
            if n % every == 0:
                await asyncio.sleep(0)
        for n, (exchange, (feeds, now)) in enumerate(list(self._feeds.items()), 1):
            feed_age = self._quoted_of(exchange).feed_age
            ages.extend(
                f"{feed_age(feed)}{_figure(_age(moment, now))}\n"
                for feed, moment in sorted(feeds.items())
            )
            if n % every == 0:
                await asyncio.sleep(0)
        # exchanges dropped while the loop ran keep nothing made for this page
        self.retain(self._reports.keys() | self._feeds.keys())
        return "".join("".join(part) for part in parts)

    def _quoted_of(self, exchange: str) -> _Quoted:
        quoted = self._quoted.get(exchange)
        if quoted is None:
            quoted = self._quoted[exchange] = _Quoted(exchange)
        return quoted

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


def _feed_age_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "reserve_monitor_feed_age_seconds",
        "Event-time age of the newest event of each feed",
        labels=["exchange", "feed"],
    )


def _age(moment: datetime, now: datetime) -> float:
    return max(0.0, (now - moment).total_seconds())


def _header(family: Metric) -> str:
    documentation = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {family.name} {documentation}\n# TYPE {family.name} {family.type}\n"


def _label(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _figure(value: Decimal | float) -> str:
    """A figure as prometheus_client writes it (Go's float format)."""
    text: str = floatToGoString(float(value))  # type: ignore[no-untyped-call]
    return text


class _Quoted:
    """One exchange's lines in the text format: their label parts quoted once."""

    __slots__ = ("_feeds", "_rules", "exchange")

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self._feeds: dict[str, str] = {}
        self._rules: dict[tuple[str, str], _RuleLabels] = {}

    def feed_age(self, feed: str) -> str:
        """The start of the line of ``feed``'s age, up to its figure."""
        start = self._feeds.get(feed)
        if start is None:
            start = self._feeds[feed] = (
                f'reserve_monitor_feed_age_seconds{{exchange="{_label(self.exchange)}",'
                f'feed="{_label(feed)}"}} '
            )
        return start

    def report_lines(self, report: AdequacyReport) -> tuple[str, ...]:
        """The lines of ``report`` in each family of :meth:`ExchangeSeries._families`, labels
        in name order as ``generate_latest`` writes them."""
        currency = report.currency
        required: list[str] = []
        available: list[str] = []
        shortfall: list[str] = []
        ratio: list[str] = []
        status: list[str] = []
        for rule in report.rules:
            quoted = self._rules.get((rule.rule, currency))
            if quoted is None:
                quoted = self._rules[rule.rule, currency] = _RuleLabels(
                    self.exchange, rule.rule, currency
                )
            money = quoted.money
            if rule.required is not None:
                required.append(f"reserve_monitor_required{money}{_figure(rule.required)}\n")
            if rule.available is not None:
                available.append(f"reserve_monitor_available{money}{_figure(rule.available)}\n")
            if rule.shortfall is not None:
                shortfall.append(f"reserve_monitor_shortfall{money}{_figure(rule.shortfall)}\n")
            if rule.ratio is not None:
                ratio.append(f"{quoted.ratio}{_figure(rule.ratio)}\n")
            status.append(quoted.statuses[rule.status])
        volume = (
            f'reserve_monitor_trading_volume{{currency="{_label(currency)}",'
            f'exchange="{_label(self.exchange)}",window="{_label(report.volume_window)}"}} '
            f"{_figure(report.trading_volume)}\n"
        )
        return (
            *("".join(lines) for lines in (required, available, shortfall, ratio, status)),
            volume,
        )


class _RuleLabels:
    """The label parts of one exchange's lines for one rule, quoted once."""

    __slots__ = ("money", "ratio", "statuses")

    def __init__(self, exchange: str, rule: str, currency: str) -> None:
        ex, name = _label(exchange), _label(rule)
        self.money = f'{{currency="{_label(currency)}",exchange="{ex}",rule="{name}"}} '
        self.ratio = f'reserve_monitor_coverage_ratio{{exchange="{ex}",rule="{name}"}} '
        # the rule's status lines for each status it may be in
        self.statuses = {
            status: "".join(
                f'reserve_monitor_rule_status{{exchange="{ex}",rule="{name}",'
                f'status="{each.value}"}} {"1.0" if each is status else "0.0"}\n'
                for each in Status
            )
            for status in Status
        }


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
    own = CollectorRegistry(auto_describe=True)
    metrics = MonitorMetrics(
        registry=registry,
        own=own,
        exchanges=ExchangeSeries(registry),
        events=Counter(
            "reserve_monitor_events",
            "Input messages by outcome",
            ["topic", "outcome"],
            registry=own,
        ),
        alerts=Counter(
            "reserve_monitor_alerts",
            "Status changes published",
            ["rule", "status"],
            registry=own,
        ),
        event_lag=PlainHistogram(
            "reserve_monitor_event_lag_seconds",
            "Processing time minus event time of input events",
            "topic",
            _LAG_BUCKETS,
            own,
        ),
        deadletters=Counter(
            "reserve_monitor_deadletters",
            "Messages sent to the dead-letter topic",
            ["topic"],
            registry=own,
        ),
        moments=Counter(
            "reserve_monitor_moments",
            "Moments judged: an exchange judged by its rules at one of its own event times",
            registry=own,
        ),
        out_of_order=Counter(
            "reserve_monitor_records_out_of_order",
            "Input records taken after a record appended later: a partition whose records "
            "no fetch brought yet (an upstream transaction open) waited for longer than "
            "RESERVE_MONITOR_MAX_IDLE_SECONDS, or a broker's clock ahead of the worker's; "
            "the changes that follow may differ from replay's",
            registry=own,
        ),
        consumer_lag=Gauge(
            "reserve_monitor_consumer_lag_records",
            "Records of each owned input partition not yet processed (log end - position)",
            ["topic", "partition"],
            registry=own,
        ),
        buffered=Gauge(
            "reserve_monitor_buffered_records",
            "Records of each owned partition fetched and held in memory, waiting to be taken "
            f"in append order; an input partition holding {BUFFERED_PER_PARTITION:,} is not "
            f"fetched until it holds {BUFFERED_PER_PARTITION // 2:,}",
            ["topic", "partition"],
            registry=own,
        ),
        restore_seconds=Gauge(
            "reserve_monitor_restore_seconds",
            "Duration of the task's last restore: its producer started (the previous owner "
            "fenced), its changelog read to the end and its state rebuilt",
            ["task"],
            registry=own,
        ),
        evaluation=Histogram(
            "reserve_monitor_evaluation_seconds",
            "Time the engine takes to take in one input event and judge the moments it "
            "closes (trigger: its topic), or to judge the exchanges gone quiet (settle)",
            ["trigger"],
            buckets=_EVALUATION_BUCKETS,
            registry=own,
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
    for collector in (
        metrics.events,
        metrics.alerts,
        metrics.event_lag,
        metrics.deadletters,
        metrics.moments,
        metrics.out_of_order,
        metrics.consumer_lag,
        metrics.buffered,
        metrics.restore_seconds,
        metrics.evaluation,
    ):
        registry.register(collector)
    return metrics
