"""The Grafana dashboards in ``deploy/grafana/dashboards/``, read as Grafana reads them.

Grafana is not installed here, so the tests do its part: list every panel and
query, resolve the template variables (``label_values(...)`` against a real
Prometheus) and substitute them, including ``$__rate_interval`` and friends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"

# Grafana's built-in interval variables, at the scale of a test run scraped every second
BUILTINS = {"__rate_interval": "10s", "__interval": "1s", "__range": "5m"}
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool


def load() -> dict[str, dict[str, Any]]:
    """Every dashboard by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows and the panels of collapsed rows opened up)."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panels({"panels": panel.get("panels", [])})
        else:
            yield panel


def targets(name: str, dashboard: dict[str, Any]) -> Iterator[Target]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield Target(name, panel["title"], target["refId"], target["expr"], target["instant"])


def query_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in dashboard["templating"]["list"] if v["type"] == "query"]


def variables_in(text: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(text)}


def substitute(text: str, values: dict[str, str]) -> str:
    """``$name`` and ``${name}`` replaced by ``values`` (built-ins included)."""
    every = {**BUILTINS, **values}

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return every.get(name, match.group(0))

    return _VARIABLE.sub(one, text)


def label_values_query(definition: str) -> tuple[str | None, str]:
    """``(selector, label)`` of a ``label_values(...)`` variable query."""
    match = _LABEL_VALUES.match(definition.strip())
    if match is None:
        raise ValueError(f"not a label_values() query: {definition!r}")
    return match.group("selector"), match.group("label")


def assignments(
    dashboard: dict[str, Any], label_values: Callable[[str | None, str], list[str]]
) -> list[dict[str, str]]:
    """Every combination of values the dashboard's query variables can take.

    Variables resolve in order, each with the earlier ones substituted (the
    ``rule`` of an exchange depends on ``$exchange``). A multi-value variable
    contributes each value on its own, as a repeated panel does.
    """
    combos: list[dict[str, str]] = [{}]
    for variable in query_variables(dashboard):
        expanded = []
        for combo in combos:
            selector, label = label_values_query(substitute(variable["definition"], combo))
            for value in label_values(selector, label):
                expanded.append({**combo, variable["name"]: value})
        combos = expanded
    return combos
