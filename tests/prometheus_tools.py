"""Where the monitoring configuration lives, and the Prometheus tools that check it.

The tools (promtool, amtool and the servers) come from Debian's packages,
installed by ``deploy/prometheus/install.sh`` (``make test`` runs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "reserve-monitor.rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
INSTALL = "deploy/prometheus/install.sh"


def binary(name: str) -> str:
    """The path of a Prometheus tool; fails with the way to install it."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed: run {INSTALL} (make test does)")
    return path


def run(tool: str, *args: str, cwd: Path = ROOT, stdin: str | None = None) -> str:
    """Run a tool; fails with its output unless it exits 0. Returns stdout."""
    done = subprocess.run(
        [binary(tool), *args], cwd=cwd, input=stdin, text=True, capture_output=True, timeout=120
    )
    assert done.returncode == 0, f"{tool} {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def alerting_rules() -> list[dict[str, Any]]:
    """Every alerting rule of the rule file, in order."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]
