"""Alertmanager routing: pages to the pager, the rest to chat, grouped by exchange."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.prometheus_tools import ALERTMANAGER_CONFIG, alerting_rules, run

RECEIVER = {"page": "pager", "chat": "chat"}


def test_the_config_is_valid() -> None:
    assert "SUCCESS" in run("amtool", "check-config", str(ALERTMANAGER_CONFIG))


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_routes_to_the_receiver_of_its_severity(rule: dict) -> None:
    severity = rule["labels"]["severity"]
    labels = [f"alertname={rule['alert']}", f"severity={severity}", "exchange=dmm"]
    # --verify.receivers makes amtool exit 1 when the route ends elsewhere
    run(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={RECEIVER[severity]}",
        *labels,
    )


def test_alerts_are_grouped_by_exchange_on_every_route() -> None:
    route = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]
    assert route["group_by"] == ["exchange"]
    # child routes inherit the grouping unless they set their own
    assert all(child.get("group_by", ["exchange"]) == ["exchange"] for child in route["routes"])


def test_inhibitions_name_alerts_that_exist() -> None:
    names = {rule["alert"] for rule in alerting_rules()}
    inhibitions = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["inhibit_rules"]
    for inhibition in inhibitions:
        for matcher in inhibition["source_matchers"] + inhibition["target_matchers"]:
            parsed = re.fullmatch(r'alertname=~?"([\w|]+)"', matcher)
            assert parsed is not None, matcher
            assert set(parsed.group(1).split("|")) <= names, matcher
