"""The Grafana provisioning and dashboards, as files (their queries run in
tests/integration/test_observability.py against a real Prometheus)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitor.worker import metrics as worker_metrics
from tests import dashboards
from tests.prometheus_tools import alerting_rules

UIDS = {
    "reserve-monitor-fleet.json": "reserve-fleet",
    "reserve-monitor-exchange.json": "reserve-exchange",
    "reserve-monitor-health.json": "reserve-health",
}
BOARDS = dashboards.load()


def _exported_names() -> set[str]:
    """Every series name a worker can export, plus Prometheus's own ``up`` and ``ALERTS``."""
    registry = CollectorRegistry()
    worker_metrics.create(registry)
    names = {"up", "ALERTS"}
    for family in registry.collect():
        names.add(family.name)
        names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum"))
    return names


def test_each_dashboard_has_its_fixed_uid() -> None:
    assert {name: board["uid"] for name, board in BOARDS.items()} == UIDS


def test_the_provisioned_datasource_is_the_one_the_dashboards_ask_for() -> None:
    provisioning = dashboards.GRAFANA / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "reserve-monitor.yml").read_text())
    prometheus = [s for s in sources["datasources"] if s["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0]["isDefault"]
    assert prometheus[0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "reserve-monitor.yml").read_text())
    assert [p["type"] for p in providers["providers"]] == ["file"]
    for name, board in BOARDS.items():
        [source] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
        assert (source["name"], source["query"]) == ("datasource", "prometheus"), name
        for panel in dashboards.panels(board):
            assert panel["datasource"]["uid"] == "${datasource}", (name, panel["title"])


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_queries_metrics_the_worker_exports(name: str) -> None:
    exported = _exported_names()
    board = BOARDS[name]
    for panel in dashboards.panels(board):
        assert panel.get("targets"), (name, panel["title"])
        for target in panel["targets"]:
            used = set(re.findall(r"\b(reserve_monitor_\w+|ALERTS|up)\b", target["expr"]))
            assert used, (name, panel["title"], target["expr"])
            assert used <= exported, (name, panel["title"], used - exported)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_fit_the_grid_and_use_variables_the_way_grafana_fills_them(name: str) -> None:
    board = BOARDS[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    for variable in dashboards.query_variables(board):
        dashboards.label_values_query(variable["definition"])  # parses, or raises
    for panel in dashboards.panels(board):
        used = set().union(*(dashboards.variables_in(t["expr"]) for t in panel["targets"]))
        used -= set(dashboards.BUILTINS)
        assert used <= set(variables), (panel["title"], used)
        # a multi-value variable is one value per repeated panel, never a list in a query
        for multi in (v for v in used if variables[v].get("multi")):
            assert panel.get("repeat") == multi, (panel["title"], multi)


def test_every_alert_links_to_a_dashboard_that_exists() -> None:
    uids = set(UIDS.values())
    for rule in alerting_rules():
        link: Any = rule["annotations"]["dashboard"]
        assert link.split("/")[2] in uids, (rule["alert"], link)
