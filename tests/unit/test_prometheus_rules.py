"""The Prometheus configuration and alerting rules, checked and unit-tested by promtool."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.prometheus_tools import (
    PROMETHEUS_CONFIG,
    PROMETHEUS_DIR,
    RULE_TESTS,
    RULES,
    alerting_rules,
    run,
)


def test_the_prometheus_config_is_valid_and_finds_the_rule_file() -> None:
    out = run("promtool", "check", "config", str(PROMETHEUS_CONFIG))
    assert "SUCCESS" in out
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    found = {path for pattern in config["rule_files"] for path in PROMETHEUS_DIR.glob(pattern)}
    assert found == {RULES}


def test_prometheus_scrapes_both_workers_and_alerts_to_alertmanager() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    workers = jobs["reserve-monitor"]
    assert workers.get("metrics_path", "/metrics") == "/metrics"
    assert [t for c in workers["static_configs"] for t in c["targets"]] == [
        "worker-1:6066",
        "worker-2:6066",
    ]
    managers = config["alerting"]["alertmanagers"]
    assert [t for m in managers for c in m["static_configs"] for t in c["targets"]] == [
        "alertmanager:9093"
    ]


def test_the_rule_file_is_valid() -> None:
    assert "SUCCESS" in run("promtool", "check", "rules", str(RULES))


@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda path: path.name)
def test_the_alerting_rules_pass_their_promtool_unit_tests(tests: Path) -> None:
    assert "SUCCESS" in run("promtool", "test", "rules", tests.name, cwd=tests.parent)


def test_every_alert_is_unit_tested_firing() -> None:
    fired = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert {rule["alert"] for rule in alerting_rules()} == fired


def test_every_alert_says_whom_it_is_for_and_what_to_do() -> None:
    for rule in alerting_rules():
        assert rule["labels"]["severity"] in {"page", "chat"}, rule["alert"]
        assert {"summary", "description", "action", "dashboard"} <= set(rule["annotations"]), rule
