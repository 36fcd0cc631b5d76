"""The incident files: their schema, and every figure with where it comes from.

An incident file (YAML, one per incident, beside this module) tells one loss in
the monitor's terms: the exchange's wallets and what it owed, a timeline of a
few events, the prices of the day, and which rules should fire and why.

Every figure is a mapping with a ``value`` (always a quoted string) and exactly
one of

* ``source``: where the public record gives it (URL or publication), or
* ``MODEL``: one line saying why the assumed value was chosen.

A number, date or duration anywhere else in the file is refused
(:func:`schema_problems`), so a reader can trust that nothing in a file is
neither sourced nor labelled ``MODEL``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from monitor.core.events import EXCHANGE_ID_PATTERN, Custody, Holder
from monitor.core.events.text import parse_rfc3339
from monitor.core.rules import RULES

INCIDENT_DIR = Path(__file__).parent
MODEL = "MODEL"

# Scalars that look like a figure: numbers, dates and times, durations.
_FIGURE_LIKE = re.compile(
    r"^\s*[-+]?(\d[\d,_]*(\.\d+)?%?|\d{4}-\d{2}-\d{2}.*|\d+(\.\d+)?\s*[smhd])\s*$"
)
_DURATION = re.compile(r"^([-+]?)(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class IncidentError(ValueError):
    """An incident file that cannot be read; ``problems`` name each place."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


@dataclass(frozen=True)
class Figure:
    """One figure of a file: its text, and its ``source`` or its ``MODEL`` reason."""

    path: str
    """Where it sits in the file, e.g. ``wallets.xem-hot-1.balance``."""
    value: str
    source: str | None
    model: str | None

    @property
    def is_model(self) -> bool:
        return self.model is not None

    @property
    def amount(self) -> Decimal:
        try:
            number = Decimal(self.value.replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"{self.path}: {self.value!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{self.path}: {self.value!r} is not a finite number")
        return number

    @property
    def duration(self) -> timedelta:
        return parse_duration(self.value, self.path)

    @property
    def time(self) -> datetime:
        try:
            return parse_rfc3339(self.value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{self.path}: {error}") from None


@dataclass(frozen=True)
class Wallet:
    wallet: str
    asset: str
    custody: Custody
    holder: Holder
    balance: Figure


@dataclass(frozen=True)
class Move:
    """A change of one wallet's balance: ``by`` is signed (a loss is negative)."""

    wallet: str
    by: Figure


@dataclass(frozen=True)
class Event:
    """A timeline entry: at the loss time, or ``at`` after (or before) it."""

    index: int
    what: str
    at: Figure | None  # None: the first loss event itself (``at: loss``)
    loss: bool
    moves: tuple[Move, ...]
    liabilities: dict[str, Figure]
    reserve_fund: Figure | None
    repeat: Figure | None
    every: Figure | None

    @property
    def is_model(self) -> bool:
        """A modelled event: its time is an assumption (the loss time is the record's)."""
        return self.at is not None and self.at.is_model


@dataclass(frozen=True)
class Expectation:
    rule: str
    why: str


@dataclass(frozen=True)
class Incident:
    """One incident file, read and checked."""

    key: str
    """The file's stem, e.g. ``coincheck``."""
    name: str
    exchange: str
    date: Figure
    lost: str
    """What was lost, in words for the table (the figures are below)."""
    loss_asset: str
    loss_quantity: Figure
    loss_value: Figure
    """Value of the loss in the reporting currency (JPY)."""
    custody: Figure
    made_whole: Figure
    loss_at: Figure
    lead: Figure
    tail: Figure
    heartbeat: Figure
    prices: dict[str, Figure]
    volume_per_day: Figure
    reserve_fund: Figure
    wallets: tuple[Wallet, ...]
    liabilities: dict[str, Figure]
    timeline: tuple[Event, ...]
    fires: tuple[Expectation, ...]
    quiet: tuple[Expectation, ...]
    figures: tuple[Figure, ...] = field(default=())
    """Every figure of the file, in file order."""

    @property
    def model_figures(self) -> list[Figure]:
        return [f for f in self.figures if f.is_model]


def parse_duration(text: str, where: str = "duration") -> timedelta:
    """``10m``, ``-2h``, ``30d``, ``45s``: a signed whole number of one unit."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{where}: {text!r} is not a duration such as 10m, -2h or 1d")
    sign, count, unit = match.groups()
    span = timedelta(**{_UNITS[unit]: int(count)})
    return -span if sign == "-" else span


# -- the schema check ---------------------------------------------------------


def is_figure(node: Any) -> bool:
    return isinstance(node, dict) and "value" in node


def schema_problems(document: Any) -> list[str]:
    """Every place where a figure is neither sourced nor labelled MODEL.

    A figure is a mapping with ``value`` and exactly one of ``source`` or
    ``MODEL`` (non-empty text). Any other number, date or duration in the
    file is a problem, wherever it is.
    """
    problems: list[str] = []

    def walk(node: Any, where: str) -> None:
        if is_figure(node):
            keys = set(node)
            value = node["value"]
            if not isinstance(value, str):
                problems.append(f'{where}.value: quote it, e.g. value: "{value}"')
            labels = keys & {"source", MODEL}
            if len(labels) != 1:
                problems.append(f"{where}: a figure needs exactly one of source or MODEL")
            for label in labels:
                text = node[label]
                if not isinstance(text, str) or not text.strip():
                    problems.append(f"{where}.{label}: must be non-empty text")
                elif label == MODEL and "\n" in text.strip():
                    problems.append(f"{where}.MODEL: the reason must be one line")
            extra = keys - {"value", "source", MODEL}
            if extra:
                problems.append(f"{where}: unknown keys in a figure: {', '.join(sorted(extra))}")
            return
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    problems.append(f"{where}.{key}: keys must be text")
                    continue
                walk(child, f"{where}.{key}" if where else key)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{where}[{index}]")
        elif isinstance(node, bool) or node is None:
            return
        elif (
            isinstance(node, int | float)
            or hasattr(node, "isoformat")  # a date YAML read unquoted
            or (isinstance(node, str) and _FIGURE_LIKE.match(node))
        ):
            problems.append(f"{where}: {node!r} is a figure without a source or MODEL label")

    walk(document, "")
    return problems


# -- reading ------------------------------------------------------------------


class _Reader:
    """Reads one document, collecting every problem and every figure."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.figures: list[Figure] = []

    def figure(self, node: Any, where: str) -> Figure:
        if not is_figure(node):
            self.problems.append(f"{where}: needs a figure {{value, source | MODEL}}")
            return Figure(where, "0", None, "missing")
        figure = Figure(where, str(node["value"]), node.get("source"), node.get(MODEL))
        self.figures.append(figure)
        return figure

    def text(self, node: Any, key: str, where: str) -> str:
        value = node.get(key) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{where}.{key}: needs text")
            return ""
        return value.strip()

    def mapping(self, node: Any, key: str, where: str) -> dict[str, Any]:
        value = node.get(key) if isinstance(node, dict) else None
        if not isinstance(value, dict):
            self.problems.append(f"{where}.{key}: needs a mapping")
            return {}
        return value

    def listing(self, node: Any, key: str, where: str, required: bool = True) -> list[Any]:
        value = node.get(key) if isinstance(node, dict) else None
        if value is None and not required:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{where}.{key}: needs a list")
            return []
        return value


_TOP_KEYS = {
    "name",
    "exchange",
    "date",
    "lost",
    "loss",
    "replay",
    "prices",
    "volume_per_day",
    "reserve_fund",
    "wallets",
    "liabilities",
    "timeline",
    "expect",
}


def read_incident(document: Any, key: str) -> Incident:
    """The incident a parsed document describes; IncidentError lists what is wrong."""
    problems = schema_problems(document)
    if problems:
        raise IncidentError(key, problems)
    if not isinstance(document, dict):
        raise IncidentError(key, ["(top): an incident file is a mapping"])
    r = _Reader()
    unknown = set(document) - _TOP_KEYS
    if unknown:
        r.problems.append(f"unknown keys: {', '.join(sorted(unknown))}")
    loss = r.mapping(document, "loss", "")
    replay = r.mapping(document, "replay", "")
    wallets = []
    for index, node in enumerate(r.listing(document, "wallets", "")):
        where = f"wallets[{index}]"
        name = r.text(node, "wallet", where)
        try:
            custody = Custody(r.text(node, "custody", where))
            holder = Holder(r.text(node, "holder", where))
        except ValueError as error:
            r.problems.append(f"{where}: {error}")
            continue
        balance = r.figure(node.get("balance"), f"wallets.{name}.balance")
        wallets.append(Wallet(name, r.text(node, "asset", where), custody, holder, balance))
    liabilities = {
        asset: r.figure(node, f"liabilities.{asset}")
        for asset, node in r.mapping(document, "liabilities", "").items()
    }
    prices = {
        asset: r.figure(node, f"prices.{asset}")
        for asset, node in r.mapping(document, "prices", "").items()
    }
    incident_fields: dict[str, Any] = {
        "name": r.text(document, "name", ""),
        "exchange": r.text(document, "exchange", ""),
        "date": r.figure(document.get("date"), "date"),
        "lost": r.text(document, "lost", ""),
        "loss_asset": r.text(loss, "asset", "loss"),
        "loss_quantity": r.figure(loss.get("quantity"), "loss.quantity"),
        "loss_value": r.figure(loss.get("value_jpy"), "loss.value_jpy"),
        "custody": r.figure(loss.get("custody"), "loss.custody"),
        "made_whole": r.figure(loss.get("made_whole"), "loss.made_whole"),
        "loss_at": r.figure(loss.get("at"), "loss.at"),
        "lead": r.figure(replay.get("lead"), "replay.lead"),
        "tail": r.figure(replay.get("tail"), "replay.tail"),
        "heartbeat": r.figure(replay.get("heartbeat"), "replay.heartbeat"),
        "prices": prices,
        "volume_per_day": r.figure(document.get("volume_per_day"), "volume_per_day"),
        "reserve_fund": r.figure(document.get("reserve_fund"), "reserve_fund"),
        "wallets": tuple(wallets),
        "liabilities": liabilities,
    }
    timeline = tuple(
        _event(r, index, node) for index, node in enumerate(r.listing(document, "timeline", ""))
    )
    expect = r.mapping(document, "expect", "")

    def expectations(kind: str) -> tuple[Expectation, ...]:
        return tuple(
            Expectation(
                r.text(node, "rule", f"expect.{kind}[{i}]"),
                r.text(node, "why", f"expect.{kind}[{i}]"),
            )
            for i, node in enumerate(r.listing(expect, kind, "expect", required=kind == "fire"))
        )

    fires, quiet = expectations("fire"), expectations("quiet")
    incident = Incident(
        key=key,
        timeline=timeline,
        fires=fires,
        quiet=quiet,
        figures=tuple(r.figures),
        **incident_fields,
    )
    r.problems.extend(_coherence(incident))
    if r.problems:
        raise IncidentError(key, r.problems)
    return incident


def _event(r: _Reader, index: int, node: Any) -> Event:
    where = f"timeline[{index}]"
    if not isinstance(node, dict):
        r.problems.append(f"{where}: an event is a mapping")
        return Event(index, "", None, False, (), {}, None, None, None)
    at_node = node.get("at")
    at = None if at_node == "loss" else r.figure(at_node, f"{where}.at")
    moves = tuple(
        Move(
            r.text(move, "wallet", f"{where}.moves[{i}]"),
            r.figure(move.get("by") if isinstance(move, dict) else None, f"{where}.moves[{i}].by"),
        )
        for i, move in enumerate(r.listing(node, "moves", where, required=False))
    )
    liabilities = {
        asset: r.figure(value, f"{where}.liabilities.{asset}")
        for asset, value in (node.get("liabilities") or {}).items()
    }
    fund = node.get("reserve_fund")
    repeat, every = node.get("repeat"), node.get("every")
    return Event(
        index,
        r.text(node, "what", where),
        at,
        at is None,
        moves,
        liabilities,
        None if fund is None else r.figure(fund, f"{where}.reserve_fund"),
        None if repeat is None else r.figure(repeat, f"{where}.repeat"),
        None if every is None else r.figure(every, f"{where}.every"),
    )


def _coherence(incident: Incident) -> list[str]:
    """Cross-checks: the names a file uses exist, its values parse."""
    problems: list[str] = []
    if not re.match(EXCHANGE_ID_PATTERN, incident.exchange):
        problems.append(f"exchange: {incident.exchange!r} is not an exchange id")
    for expectation in (*incident.fires, *incident.quiet):
        if expectation.rule not in RULES:
            problems.append(f"expect: no rule {expectation.rule!r}; known: {', '.join(RULES)}")
    names = {w.wallet for w in incident.wallets}
    assets = {w.asset for w in incident.wallets}
    for asset in sorted(assets - set(incident.prices)):
        problems.append(f"prices: no price of {asset}, which a wallet holds")
    if not any(event.loss for event in incident.timeline):
        problems.append("timeline: needs the first loss event (at: loss)")
    for event in incident.timeline:
        for move in event.moves:
            if move.wallet not in names:
                problems.append(f"timeline[{event.index}]: no wallet {move.wallet!r}")
        if (event.repeat is None) != (event.every is None):
            problems.append(f"timeline[{event.index}]: repeat and every go together")
    parsed: list[tuple[Figure, str]] = [
        *((f, "amount") for f in incident.prices.values()),
        *((w.balance, "amount") for w in incident.wallets),
        *((f, "amount") for f in incident.liabilities.values()),
        (incident.volume_per_day, "amount"),
        (incident.reserve_fund, "amount"),
        (incident.loss_value, "amount"),
        (incident.loss_at, "time"),
        (incident.lead, "duration"),
        (incident.tail, "duration"),
        (incident.heartbeat, "duration"),
    ]
    for event in incident.timeline:
        parsed += [(move.by, "amount") for move in event.moves]
        parsed += [(f, "amount") for f in event.liabilities.values()]
        if event.reserve_fund is not None:
            parsed.append((event.reserve_fund, "amount"))
        if event.at is not None:
            parsed.append((event.at, "duration"))
        if event.every is not None and event.repeat is not None:
            parsed += [(event.every, "duration"), (event.repeat, "amount")]
    for figure, kind in parsed:
        try:
            getattr(figure, kind)
        except ValueError as error:
            problems.append(str(error))
    return problems


def load_incident(path: Path) -> Incident:
    """Read and check one incident file."""
    try:
        document = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as error:
        raise IncidentError(path.name, [f"not YAML ({error})"]) from None
    try:
        return read_incident(document, path.stem)
    except ValueError as error:
        if isinstance(error, IncidentError):
            raise
        raise IncidentError(path.name, [str(error)]) from None


def incident_files(directory: Path = INCIDENT_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_library(directory: Path = INCIDENT_DIR) -> list[Incident]:
    """Every incident of a directory, in the order of their dates."""
    incidents = [load_incident(path) for path in incident_files(directory)]
    return sorted(incidents, key=lambda i: (i.loss_at.time, i.key))
