"""The observability stack for real: a worker fed by the simulator, scraped by
Prometheus with the real rules, alerting through Alertmanager with the real
routing, and every Grafana panel's query answered by that Prometheus.

One worker, one Prometheus and one Alertmanager serve every test here (module
scope): the stack takes a while to come up, and each test only reads from it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.events import Topic
from monitor.synthetic import simulator
from monitor.synthetic.scenarios import generate, phases
from tests import dashboards
from tests.integration.harness import Deployment, WorkerProcess, partition_of, produce, wait_for
from tests.integration.monitoring import Server, start_alertmanager, start_prometheus
from tests.integration.story import healthy, prefixed
from tests.prometheus_tools import run

pytestmark = pytest.mark.kafka

RESERVE = "jp.liability_reserve"
# CONTRACT section 7, then the worker's own health: name -> (type, labels)
CONTRACT_METRICS = {
    "reserve_monitor_required": ("gauge", {"exchange", "rule", "currency"}),
    "reserve_monitor_available": ("gauge", {"exchange", "rule", "currency"}),
    "reserve_monitor_shortfall": ("gauge", {"exchange", "rule", "currency"}),
    "reserve_monitor_coverage_ratio": ("gauge", {"exchange", "rule"}),
    "reserve_monitor_rule_status": ("gauge", {"exchange", "rule", "status"}),
    "reserve_monitor_trading_volume": ("gauge", {"exchange", "window", "currency"}),
    "reserve_monitor_feed_age_seconds": ("gauge", {"exchange", "feed"}),
    "reserve_monitor_events_total": ("counter", {"topic", "outcome"}),
    "reserve_monitor_alerts_total": ("counter", {"rule", "status"}),
    "reserve_monitor_event_lag_seconds": ("histogram", {"topic"}),
}
HEALTH_METRICS = {
    "reserve_monitor_deadletters_total": ("counter", {"topic"}),
    "reserve_monitor_consumer_lag_records": ("gauge", {"topic", "partition"}),
    "reserve_monitor_evaluation_seconds": ("histogram", {"trigger"}),
}


@dataclass
class Stack:
    deployment: Deployment
    worker: WorkerProcess
    prometheus: Server
    alertmanager: Server
    fed_at: float  # wall time the simulator began, for range queries

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.prometheus.get("/api/v1/query", query=expr)["result"]
        return result

    def query_range(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.prometheus.get(
            "/api/v1/query_range",
            query=expr,
            start=f"{self.fed_at - 5:.3f}",
            end=f"{time.time():.3f}",
            step="1",
        )["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """What Alertmanager holds now (its v2 API)."""
        alerts: list[dict[str, Any]] = self.alertmanager.get("/api/v2/alerts")
        return alerts

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{log}"
            for name, log in (
                ("worker", self.worker.log(30)),
                ("prometheus", self.prometheus.log(15)),
                ("alertmanager", self.alertmanager.log(15)),
            )
        )


def until(check: Any, stack: Stack, timeout: float = 60.0, every: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with the servers' logs."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not met in {timeout}s; last: {last!r}\n{stack.logs()}")


def incident_until_top_up(start: datetime) -> list[simulator.Record]:
    """The simulator's dmm-incident, stopped before the top-up: dmm stays in breach."""
    top_up = next(p for p in phases("dmm-incident", start, 1) if p.name == "top-up")
    return [r for r in generate("dmm-incident", start, 1) if r.ts < top_up.starts]


@pytest.fixture(scope="module")
def stack(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("observability")
    deployment = Deployment(bootstrap)
    worker = WorkerProcess(deployment, workdir).start()
    servers: list[Server] = []
    try:
        servers.append(start_alertmanager(workdir))
        servers.append(start_prometheus(workdir, worker.port, servers[0].port))
        stack = Stack(deployment, worker, servers[1], servers[0], fed_at=time.time())
        # one scrape before any input, so every counter is seen at 0 first
        until(lambda: stack.query('up{job="reserve-monitor"} == 1'), stack)
        stack.fed_at = time.time()
        # the story up to its top-up (+850 s) lies in the past: no event is dated ahead
        start = (datetime.now(UTC) - timedelta(minutes=15)).replace(microsecond=0)
        asyncio.run(simulator.produce(incident_until_top_up(start), bootstrap, deployment.prefix))
        # and one message no schema accepts
        asyncio.run(
            produce(bootstrap, [(deployment.topic("exchange.ledger"), "dmm", b"{not json")])
        )
        until(lambda: worker.rule_status("dmm", RESERVE) == "breach", stack)
        # the gauges follow on the worker's next tick
        breach = {"exchange": "dmm", "rule": RESERVE, "status": "breach"}
        until(lambda: worker.sample("reserve_monitor_rule_status", **breach) == 1.0, stack)
        yield stack
    finally:
        for server in reversed(servers):
            server.stop()
        worker.stop()


def test_a_real_scrape_passes_promtool_and_carries_the_contract_metrics(stack: Stack) -> None:
    scrape = stack.worker.metrics()
    # promtool prints each lint problem (and exits 1): nothing to say is a pass
    assert run("promtool", "check", "metrics", stdin=scrape).strip() == ""

    families = {f.name: f for f in text_string_to_metric_families(scrape)}
    for name, (kind, labels) in {**CONTRACT_METRICS, **HEALTH_METRICS}.items():
        # the parser names a counter family without its _total suffix
        family = families.get(name.removesuffix("_total"))
        assert family is not None, f"{name} missing from the scrape"
        assert family.type == kind, (name, family.type)
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        assert samples, f"{name} has no series"
        for sample in samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)


def test_prometheus_scrapes_the_worker_and_sees_its_health(stack: Stack) -> None:
    partitions = stack.deployment.partitions
    # every input partition is owned, and all of it processed and committed
    lag = until(
        lambda: (
            r
            if len(r := stack.query("reserve_monitor_consumer_lag_records"))
            == len(Topic) * partitions
            and all(float(s["value"][1]) == 0 for s in r)
            else None
        ),
        stack,
    )
    assert {(s["metric"]["topic"], s["metric"]["partition"]) for s in lag} == {
        (topic.value, str(p)) for topic in Topic for p in range(partitions)
    }
    # events taken in, batches settled, time passing: each timed (a scrape may predate some)
    triggers = {"exchange.trades", "exchange.wallet-balances", "settle"}
    evaluated = until(
        lambda: (
            found
            if triggers
            <= (
                found := {
                    s["metric"]["trigger"]
                    for s in stack.query("reserve_monitor_evaluation_seconds_count > 0")
                }
            )
            else None
        ),
        stack,
    )
    assert triggers <= evaluated
    # the dead letter is counted when its transaction commits, after its record was taken
    # (lag 0), and Prometheus sees it at its next scrape: waited for, and exactly once
    dead = 'reserve_monitor_deadletters_total{topic="exchange.ledger"}'
    until(lambda: [float(s["value"][1]) for s in stack.query(dead)] == [1.0], stack)
    # the story's exchanges were judged at their moments, each counted
    (moments,) = stack.query("reserve_monitor_moments_total")
    assert float(moments["value"][1]) > 0


def _active(stack: Stack, alertname: str) -> list[dict[str, Any]]:
    return [
        a
        for a in stack.alerts()
        if a["labels"]["alertname"] == alertname and a["status"]["state"] == "active"
    ]


def test_the_breach_reaches_alertmanager_and_routes_to_the_pager(stack: Stack) -> None:
    reserve = next(r for r in stack.worker.status()["dmm"]["rules"] if r["rule"] == RESERVE)
    # the description quotes the worker's own shortfall in whole yen (once an
    # evaluation after the last trade reached Alertmanager)
    shortfall = f"short by {float(reserve['shortfall']):.0f} JPY"

    def breach_of_dmm() -> list[dict[str, Any]]:
        return [
            a
            for a in _active(stack, "ReserveBreach")
            if a["labels"].get("exchange") == "dmm"
            and a["labels"].get("rule") == RESERVE
            and shortfall in a["annotations"]["description"]
        ]

    [alert] = until(breach_of_dmm, stack)
    assert alert["labels"]["severity"] == "page"
    assert [r["name"] for r in alert["receivers"]] == ["pager"]
    assert alert["annotations"]["action"].startswith("Add the shortfall to the liability-reserve")


def test_breaches_of_one_exchange_arrive_as_one_pager_group(stack: Stack) -> None:
    def dmm_breaches() -> set[str]:
        return {
            a["labels"]["rule"]
            for a in _active(stack, "ReserveBreach")
            if a["labels"]["exchange"] == "dmm"
        }

    breached = until(lambda: len(b := dmm_breaches()) > 1 and b, stack)
    groups = [
        {a["labels"]["rule"] for a in group["alerts"]}
        for group in stack.alertmanager.get("/api/v2/alerts/groups")
        if group["receiver"]["name"] == "pager" and group["labels"] == {"exchange": "dmm"}
    ]
    assert len(groups) == 1
    assert breached <= groups[0]


def test_a_dead_letter_reaches_alertmanager_and_routes_to_chat(stack: Stack) -> None:
    [alert] = until(lambda: _active(stack, "ReserveMonitorDeadLetters"), stack)
    assert alert["labels"]["topic"] == "exchange.ledger"
    assert alert["labels"]["severity"] == "chat"
    assert [r["name"] for r in alert["receivers"]] == ["chat"]


def test_the_alerts_firing_are_the_worker_breaches_and_nothing_else(stack: Stack) -> None:
    def breaches_seen_by_the_worker() -> set[tuple[str, str]]:
        return {
            (exchange, rule["rule"])
            for exchange, report in stack.worker.status().items()
            for rule in report["rules"]
            if rule["status"] == "breach"
        }

    def firing() -> tuple[set[str], set[tuple[str, str]]]:
        alerts = stack.query('ALERTS{alertstate="firing"}')
        names = {a["metric"]["alertname"] for a in alerts}
        breaches = {
            (a["metric"]["exchange"], a["metric"]["rule"])
            for a in alerts
            if a["metric"]["alertname"] == "ReserveBreach"
        }
        return names, breaches

    expected = breaches_seen_by_the_worker()
    assert ("dmm", RESERVE) in expected
    assert all(exchange == "dmm" for exchange, _ in expected)  # calm stays healthy

    def settled() -> set[str] | None:
        names, breaches = firing()
        return names if breaches == expected and "ReserveMonitorDeadLetters" in names else None

    # no worker down, no lag, no stale feed: only what the incident and the bad message caused
    assert until(settled, stack) == {"ReserveBreach", "ReserveMonitorDeadLetters"}


def _has_data(series: list[dict[str, Any]]) -> bool:
    """At least one finite value (a rate over an idle window is NaN: nothing drawn)."""
    for s in series:
        values = s.get("values") or [s["value"]]
        if any(math.isfinite(float(v)) for _, v in values):
            return True
    return False


def test_every_dashboard_panel_query_returns_data(stack: Stack) -> None:
    def label_values(selector: str | None, label: str) -> list[str]:
        params = {"match[]": selector} if selector else {}
        values: list[str] = stack.prometheus.get(f"/api/v1/label/{label}/values", **params)
        return values

    queries: dict[str, set[tuple[str, str, bool]]] = {}
    for name, dashboard in dashboards.load().items():
        combos = dashboards.assignments(dashboard, label_values)
        assert combos, f"{name}: a template variable has no value"
        for target in dashboards.targets(name, dashboard):
            for combo in combos:
                expr = dashboards.substitute(target.expr, combo)
                where = f"{name} / {target.panel} / {target.ref}"
                queries.setdefault(expr, set()).add((where, expr, target.instant))

    def empty() -> list[str]:
        missing = []
        for expr, uses in queries.items():
            instant = any(i for _, _, i in uses)
            series = stack.query(expr) if instant else stack.query_range(expr)
            if not _has_data(series):
                missing.append(f"{sorted(w for w, _, _ in uses)[0]}: {expr}")
        return missing

    # rates need a few scrapes: retry until every query has its data
    deadline = time.monotonic() + 30
    while (missing := empty()) and time.monotonic() < deadline:
        time.sleep(2)
    assert not missing, "panels without data:\n" + "\n".join(missing)
    assert len(queries) > 30  # the three dashboards, with every variable value


def _exported_exchanges(worker: WorkerProcess) -> set[str]:
    return {
        sample.labels["exchange"]
        for family in text_string_to_metric_families(worker.metrics())
        for sample in family.samples
        if "exchange" in sample.labels
    }


async def test_a_worker_stops_exporting_the_exchanges_a_rebalance_takes_away(
    bootstrap: str, tmp_path: Path
) -> None:
    # not the shared stack: this one needs a group of two
    d = Deployment(bootstrap)
    assert {partition_of("dmm", d.partitions), partition_of("calm", d.partitions)} == {0, 1}
    first = WorkerProcess(d, tmp_path, "first").start()
    second = WorkerProcess(d, tmp_path, "second")
    try:
        await produce(bootstrap, prefixed(d.prefix, healthy("dmm") + healthy("calm")[1:]))
        await wait_for(lambda: _exported_exchanges(first) == {"dmm", "calm"})

        second.start()

        def split() -> tuple[set[str], set[str]] | None:
            mine, theirs = set(first.status()), set(second.status())
            if mine and theirs and not mine & theirs and mine | theirs == {"dmm", "calm"}:
                return mine, theirs
            return None

        # each worker owns one exchange now, and exports that one only
        mine, theirs = await wait_for(split, timeout=60)
        await wait_for(lambda: _exported_exchanges(first) == mine)
        await wait_for(lambda: _exported_exchanges(second) == theirs)
    finally:
        second.stop()
        first.stop()
