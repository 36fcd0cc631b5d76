"""The worker's metrics: gauges from adequacy reports, series that leave, consumer lag."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.engine import Engine, Outcome
from monitor.core.events import Topic
from monitor.core.output.report import AdequacyReport, RuleReport, adequacy_report
from monitor.core.policy import load_policy
from monitor.core.status import Status
from monitor.worker import metrics as worker_metrics
from monitor.worker.metrics import MonitorMetrics, PartitionLag
from tests.unit.builders import at, feed, price, reserve_fund, trade, wallet

RESERVE = "jp.liability_reserve"
COLD = "jp.cold_storage"


@pytest.fixture
def metrics() -> MonitorMetrics:
    return worker_metrics.create(CollectorRegistry())


def value(metrics: MonitorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def healthy_engine(*exchanges: str) -> Engine:
    """Every exchange 97% cold with a ¥5 bn fund: ok against the ¥2 bn minimum floor."""
    engine = Engine(load_policy())
    feed(engine, price("10700000"))
    for exchange in exchanges:
        feed(
            engine,
            wallet("97000", exchange=exchange),
            wallet("3000", wallet_id="btc-hot-1", custody="hot", exchange=exchange),
            reserve_fund("5000000000", exchange=exchange),
            trade("1000000", when=at(minutes=1), exchange=exchange),
        )
    return engine


def test_a_report_sets_the_contract_gauges(metrics: MonitorMetrics) -> None:
    engine = healthy_engine("dmm")
    report = adequacy_report(engine, "dmm")
    metrics.record_report(report)

    money = {"exchange": "dmm", "rule": RESERVE, "currency": "JPY"}
    reserve = next(r for r in report.rules if r.rule == RESERVE)
    assert value(metrics, "reserve_monitor_required", **money) == 2_000_000_000
    assert value(metrics, "reserve_monitor_available", **money) == 5_000_000_000
    assert value(metrics, "reserve_monitor_shortfall", **money) == 0
    assert value(metrics, "reserve_monitor_coverage_ratio", exchange="dmm", rule=RESERVE) == float(
        reserve.ratio
    )
    assert value(metrics, "reserve_monitor_coverage_ratio", exchange="dmm", rule=COLD) == 0.97
    statuses = {
        status.value: value(
            metrics, "reserve_monitor_rule_status", exchange="dmm", rule=RESERVE, status=status
        )
        for status in Status
    }
    assert statuses == {"ok": 1, "warning": 0, "breach": 0, "unknown": 0}
    assert (
        value(
            metrics, "reserve_monitor_trading_volume", exchange="dmm", window="30d", currency="JPY"
        )
        == 1_000_000
    )
    # the trade is the newest event: a minute younger than the wallet snapshots
    assert value(metrics, "reserve_monitor_feed_age_seconds", exchange="dmm", feed="trades") == 0
    assert (
        value(metrics, "reserve_monitor_feed_age_seconds", exchange="dmm", feed="wallet_balances")
        == 60
    )


def test_an_unknown_measure_removes_its_series_instead_of_keeping_the_last(
    metrics: MonitorMetrics,
) -> None:
    engine = healthy_engine("dmm")
    metrics.record_report(adequacy_report(engine, "dmm"))
    assert value(metrics, "reserve_monitor_coverage_ratio", exchange="dmm", rule=COLD) is not None

    # two hours later the wallet snapshots are stale: cold share unknown
    feed(engine, trade("1000000", when=at(hours=2)))
    report = adequacy_report(engine, "dmm")
    assert next(r for r in report.rules if r.rule == COLD).ratio is None
    metrics.record_report(report)

    assert value(metrics, "reserve_monitor_coverage_ratio", exchange="dmm", rule=COLD) is None
    assert (
        value(metrics, "reserve_monitor_rule_status", exchange="dmm", rule=COLD, status="unknown")
        == 1
    )


def test_exchanges_handed_to_another_worker_leave_every_gauge(metrics: MonitorMetrics) -> None:
    engine = healthy_engine("dmm", "calm")
    for exchange in ("dmm", "calm"):
        metrics.record_report(adequacy_report(engine, exchange))

    metrics.retain_exchanges({"calm"})

    exported = {
        sample.labels.get("exchange")
        for family in metrics.registry.collect()
        for sample in family.samples
        if family.name.startswith("reserve_monitor_") and "exchange" in sample.labels
    }
    assert exported == {"calm"}
    money = {"exchange": "calm", "rule": RESERVE, "currency": "JPY"}
    assert value(metrics, "reserve_monitor_available", **money) == 5_000_000_000


def test_every_topic_and_outcome_starts_at_zero(metrics: MonitorMetrics) -> None:
    # a counter born at 1 has no increase() in Prometheus: the first dead letter would not alert
    for topic in Topic:
        assert value(metrics, "reserve_monitor_deadletters_total", topic=topic.value) == 0
        for outcome in Outcome:
            assert (
                value(metrics, "reserve_monitor_events_total", topic=topic.value, outcome=outcome)
                == 0
            )
        assert value(metrics, "reserve_monitor_evaluation_seconds_count", trigger=topic) == 0
    assert value(metrics, "reserve_monitor_evaluation_seconds_count", trigger="settle") == 0


def test_lag_series_of_partitions_no_longer_owned_disappear(metrics: MonitorMetrics) -> None:
    metrics.record_consumer_lag(
        [PartitionLag("exchange.trades", 0, 5), PartitionLag("exchange.trades", 1, 9)]
    )
    metrics.record_consumer_lag([PartitionLag("exchange.trades", 1, 2)])

    def lag(partition: str) -> Any:
        return value(
            metrics,
            "reserve_monitor_consumer_lag_records",
            topic="exchange.trades",
            partition=partition,
        )

    assert lag("0") is None
    assert lag("1") == 2


def test_a_silent_exchanges_feed_ages_grow_with_the_workers_clock(
    metrics: MonitorMetrics,
) -> None:
    engine = healthy_engine("dmm")
    report = adequacy_report(engine, "dmm")
    metrics.record_report(report)
    wallets = value(
        metrics, "reserve_monitor_feed_age_seconds", exchange="dmm", feed="wallet_balances"
    )
    # nothing more arrives for dmm; the worker's clock goes on (other exchanges, wall time)
    metrics.record_feed_ages("dmm", report.feeds, report.as_of + timedelta(hours=2))
    later = value(
        metrics, "reserve_monitor_feed_age_seconds", exchange="dmm", feed="wallet_balances"
    )
    assert later == wallets + 7200


@given(
    st.lists(
        st.one_of(
            st.sampled_from(worker_metrics._LAG_BUCKETS),  # on a bound: it counts as within
            st.floats(min_value=0, max_value=10_000, allow_nan=False),
        ),
        max_size=60,
    )
)
def test_the_plain_lag_histogram_exposes_what_prometheus_clients_histogram_does(
    lags: list[float],
) -> None:
    """The event-lag histogram keeps plain counts (no lock per observation); scraped, it
    reads as prometheus_client's own Histogram fed the same values, bucket for bucket."""
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram(
        "reserve_monitor_event_lag_seconds",
        "Processing time minus event time of input events",
        ["topic"],
        buckets=worker_metrics._LAG_BUCKETS,
        registry=theirs,
    )
    for topic in Topic:
        reference.labels(topic.value)  # every topic's series exists from the start
    plain = worker_metrics.create(ours).event_lag
    for n, lag in enumerate(lags):
        topic = Topic.TRADES.value if n % 3 else Topic.LEDGER.value
        reference.labels(topic).observe(lag)
        plain.labels(topic).observe(lag)
    lines = [
        line
        for line in generate_latest(theirs).decode().splitlines()
        if "_created" not in line  # the time a series was made: no figure of the monitor's
    ]
    exposed = [
        line
        for line in generate_latest(ours).decode().splitlines()
        if "reserve_monitor_event_lag_seconds" in line
    ]
    assert exposed == lines


# -- the page ------------------------------------------------------------------------

_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_measures = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=4)


@st.composite
def reports(draw: st.DrawFn) -> AdequacyReport:
    """A report of any shape: names with quotes, backslashes and line breaks, any figures."""
    rules = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    moment = at(minutes=draw(st.integers(0, 600)))
    return AdequacyReport(
        draw(st.sampled_from(["dmm", 'ex"1', "ex\\2", "ex\n3", "取引所"])),
        moment,
        draw(st.sampled_from(["JPY", "EUR"])),
        tuple(
            RuleReport(
                rule,
                draw(st.sampled_from(list(Status))),
                draw(_measures),
                draw(_measures),
                draw(_measures),
                draw(_measures),
                "reason",
                {},
            )
            for rule in rules
        ),
        draw(st.decimals(min_value=0, allow_nan=False, allow_infinity=False, places=2)),
        draw(st.sampled_from(["30d", "1d"])),
        {
            feed: moment - timedelta(seconds=draw(st.integers(0, 10**7)))
            for feed in draw(st.sets(st.sampled_from(["trades", "wallet_balances", "prices"])))
        },
    )


@given(st.lists(st.lists(reports(), min_size=1, max_size=4), min_size=1, max_size=3))
def test_the_page_holds_what_prometheus_client_writes_of_the_same_series(
    scrapes: list[list[AdequacyReport]],
) -> None:
    """The per-exchange series are written by the monitor itself, each exchange's lines kept
    until its report changes; scraped after each round of reports, the page holds exactly
    the lines prometheus_client writes of the whole registry, and parses as the same
    families."""
    metrics = worker_metrics.create(CollectorRegistry())
    for scrape in scrapes:
        for report in scrape:
            metrics.record_report(report)
        page = asyncio.run(metrics.page()).decode()
        reference = generate_latest(metrics.registry).decode()
        assert sorted(page.splitlines()) == sorted(reference.splitlines())
        ours = {f.name: f for f in text_string_to_metric_families(page)}
        theirs = {f.name: f for f in text_string_to_metric_families(reference)}
        assert ours == theirs


def test_the_page_shows_the_latest_report_of_each_exchange_and_none_of_those_gone(
    metrics: MonitorMetrics,
) -> None:
    engine = healthy_engine("dmm", "calm")
    for exchange in ("dmm", "calm"):
        metrics.record_report(adequacy_report(engine, exchange))
    asyncio.run(metrics.page())  # each exchange's lines are kept from here on

    feed(engine, reserve_fund("1000000000", when=at(minutes=2), exchange="dmm"))
    metrics.record_report(adequacy_report(engine, "dmm"))
    metrics.retain_exchanges({"dmm"})
    families = {
        f.name: f for f in text_string_to_metric_families(asyncio.run(metrics.page()).decode())
    }

    available = {
        s.labels["exchange"]: s.value
        for s in families["reserve_monitor_available"].samples
        if s.labels["rule"] == RESERVE
    }
    assert available == {"dmm": 1_000_000_000}
    breach = {
        s.labels["exchange"]
        for s in families["reserve_monitor_rule_status"].samples
        if s.labels["status"] == "breach" and s.value == 1
    }
    assert breach == {"dmm"}  # ¥1 bn against the ¥2 bn floor
    assert {s.labels["exchange"] for s in families["reserve_monitor_feed_age_seconds"].samples} == {
        "dmm"
    }


async def test_the_page_lets_the_event_loop_run_while_it_is_written(
    metrics: MonitorMetrics,
) -> None:
    """Writing thousands of exchanges' series takes a tenth of a second or more: the records
    and heartbeats of the worker's loop go on between every few hundred exchanges."""
    report = adequacy_report(healthy_engine("dmm"), "dmm")
    for n in range(1000):
        metrics.record_report(
            AdequacyReport(
                f"ex-{n}",
                report.as_of,
                report.currency,
                report.rules,
                report.trading_volume,
                report.volume_window,
                report.feeds,
            )
        )
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    before = turns
    page = await metrics.page()
    other.cancel()
    assert page.count(b"reserve_monitor_trading_volume{") == 1000
    # 1,000 exchanges' report lines and then their feed ages, 200 at a time
    assert turns - before >= 9
