"""Every judgment of a replay input, kept for a picture: what the report draws.

``replay`` prints only the status changes. A report also wants the ratio,
required, available and shortfall of each rule of each exchange at **every**
moment judged, so it drives the same engine with ``guarded=False``: every rule
is assessed at every moment, so the assessment a rule holds after a judgment is
that moment's (the guarded engine skips rules whose answer cannot change and
keeps an older measurement). The statuses, and so the CloudEvents, are the
guarded engine's to the byte (``tests/unit/test_moments.py`` holds the two equal;
``tests/unit/test_report.py`` checks it against ``replay`` for the input it draws).

A judgment closes an exchange's moment before the record that closes it moves
the exchange's clock, so the moment judged during a step is the exchange's clock
just before the step (:func:`_clocks`).

Pure: no files, no drawing. :func:`observe` takes parsed lines and returns an
:class:`Observed`; the summaries below read it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from monitor.core.changes import Step
from monitor.core.engine import Engine
from monitor.core.events import Event, Price
from monitor.core.output.alerts import cloud_event
from monitor.core.policy import Policy
from monitor.core.status import Status, Thresholds
from monitor.progress import Progress
from monitor.replay import DEFAULT_APP_ID, Line, count, events_of


@dataclass(frozen=True, slots=True)
class Judgment:
    """One rule of one exchange as judged at one moment.

    ``status`` is the published status after the moment (hysteresis, and a new
    breach held for the rule's ``breach_for``, applied); ``level`` the raw status
    of the ratio against the thresholds, without history. ``ratio`` is None when
    the rule could not judge (``unknown``).
    """

    moment: datetime
    status: Status
    level: Status
    ratio: Decimal | None
    required: Decimal | None
    available: Decimal | None
    shortfall: Decimal | None


@dataclass(frozen=True, slots=True)
class Alert:
    """One status change, with the CloudEvent the worker would publish for it."""

    exchange: str
    rule: str
    status: Status
    previous: Status
    as_of: datetime
    event: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.event["data"]
        return data

    @property
    def reason(self) -> str:
        return str(self.data["reason"])

    @property
    def evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = self.data["evidence"]
        return evidence


@dataclass(slots=True)
class RuleSeries:
    """One rule of one exchange over event time: its judgments and its alerts.

    ``reason`` and ``evidence`` are those of the last judgment (read when the
    input has ended, so they describe the state they were judged on).
    """

    exchange: str
    rule: str
    thresholds: Thresholds
    judgments: list[Judgment] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def latest(self) -> Judgment | None:
        return self.judgments[-1] if self.judgments else None

    @property
    def known(self) -> list[Judgment]:
        """The judgments with a ratio (not ``unknown``)."""
        return [j for j in self.judgments if j.ratio is not None]

    @property
    def breaches(self) -> list[Alert]:
        return [a for a in self.alerts if a.status is Status.BREACH]


@dataclass(slots=True)
class Observed:
    """What a replay input made the monitor say, moment by moment.

    ``exchanges`` maps each exchange to its rules' series, in the policy's rule
    order; ``alerts`` are every status change in the order ``replay`` prints them.
    """

    currency: str
    exchanges: dict[str, dict[str, RuleSeries]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(self.outcomes.values())

    def series(self) -> Iterator[RuleSeries]:
        for exchange in sorted(self.exchanges):
            yield from self.exchanges[exchange].values()


def observe(
    lines: Iterable[Line],
    policy: Policy,
    *,
    app_id: str = DEFAULT_APP_ID,
    progress: Progress | None = None,
) -> Observed:
    """Replay ``lines`` (see :func:`monitor.replay.merged`) and keep every judgment; a
    ``progress`` is told of each line taken."""
    engine = Engine(policy, journal=False, guarded=False)
    observed = Observed(policy.reporting_currency)
    for line, event, appended in events_of(lines, observed, progress=progress):
        clocks = _clocks(engine, event)
        step = engine.take(event, appended)
        _record(engine, step, clocks, observed, app_id)
        count(observed, line, step)
    _record(engine, engine.finish(), {}, observed, app_id)  # no clock moves at the end
    _last_words(engine, observed)
    return observed


def _clocks(engine: Engine, event: Event) -> dict[str, datetime | None]:
    """The clocks ``event`` may move: the moments a judgment while taking it is of.

    An exchange's record moves only its own clock; a price, those of the exchanges
    valued in its asset (all are read: which those are is the engine's to know). An
    exchange judged for a quiet gap of append time keeps its clock through the step.
    """
    if isinstance(event, Price):
        return {name: state.clock for name, state in engine.exchanges.items()}
    state = engine.exchanges.get(event.exchange)
    return {event.exchange: state.clock if state is not None else None}


def _record(
    engine: Engine,
    step: Step,
    clocks: dict[str, datetime | None],
    observed: Observed,
    app_id: str,
) -> None:
    """Keep the judgments and the status changes of one step of the engine."""
    currency = observed.currency
    for change in step.changes:
        alert = Alert(
            change.exchange,
            change.rule,
            change.status,
            change.previous,
            change.as_of,
            cloud_event(change, app_id=app_id, currency=currency),
        )
        observed.alerts.append(alert)
        _rules(engine, observed, change.exchange)[change.rule].alerts.append(alert)
    for name in dict.fromkeys(step.evaluated):  # each exchange once, in judging order
        state = engine.exchanges[name]
        moment = clocks.get(name) or state.clock
        assert moment is not None
        rules = _rules(engine, observed, name)
        for rule in engine.rules_of(name):
            held = state.rules[rule.id]
            a = held.assessment
            assert a is not None  # unguarded: every rule is assessed at every judgment
            judgment = Judgment(
                moment,
                held.status,
                Status.UNKNOWN if a.ratio is None else rule.thresholds.level(a.ratio),
                a.ratio,
                a.required,
                a.available,
                a.shortfall,
            )
            series = rules[rule.id].judgments
            if series and series[-1].moment == moment:
                series[-1] = judgment  # a re-opened moment judged again: the last word
            else:
                series.append(judgment)


def _rules(engine: Engine, observed: Observed, exchange: str) -> dict[str, RuleSeries]:
    rules = observed.exchanges.get(exchange)
    if rules is None:
        rules = observed.exchanges[exchange] = {
            rule.id: RuleSeries(exchange, rule.id, rule.thresholds)
            for rule in engine.rules_of(exchange)
        }
    return rules


def _last_words(engine: Engine, observed: Observed) -> None:
    """The reason and evidence of each rule's last judgment, read once the input ended."""
    for name, rules in observed.exchanges.items():
        state = engine.exchanges.get(name)
        if state is None:
            continue
        for rule_id, series in rules.items():
            held = state.rules.get(rule_id)
            if held is not None and held.assessment is not None:
                series.reason = held.assessment.reason
                series.evidence = held.assessment.evidence


# -- summaries -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shortfall:
    """What one rule of one exchange lacked: at its worst moment, and at the end.

    ``worst`` is the judgment with the largest shortfall (the earliest of equals),
    None when the rule never lacked anything; ``now`` the last judgment.
    """

    exchange: str
    rule: str
    worst: Judgment | None
    now: Judgment | None


def shortfall(series: RuleSeries) -> Shortfall:
    """The largest shortfall of ``series`` and its last one."""
    worst: Judgment | None = None
    largest = Decimal(0)
    for judgment in series.judgments:
        amount = judgment.shortfall
        if amount is not None and amount > largest:
            worst, largest = judgment, amount
    return Shortfall(series.exchange, series.rule, worst, series.latest)


def worst_status(series: RuleSeries) -> Status:
    """The worst status ``series`` published: breach, then warning, then ok, else unknown."""
    seen = {j.status for j in series.judgments}
    for status in (Status.BREACH, Status.WARNING, Status.OK):
        if status in seen:
            return status
    return Status.UNKNOWN


def exchange_order(observed: Observed) -> list[str]:
    """The exchanges, the worst first (any breach, then warning, ok, unknown), then by id."""
    rank = {Status.BREACH: 0, Status.WARNING: 1, Status.OK: 2, Status.UNKNOWN: 3}

    def worst(name: str) -> int:
        return min((rank[worst_status(s)] for s in observed.exchanges[name].values()), default=3)

    return sorted(observed.exchanges, key=lambda name: (worst(name), name))


def span(rules: Iterable[RuleSeries]) -> tuple[datetime, datetime] | None:
    """The event time to draw: from the first moment any rule could judge to the last
    moment judged (a day of trade history before any balance is known is left out)."""
    rules = list(rules)
    known = [j.moment for series in rules for j in series.judgments if j.ratio is not None]
    moments = [j.moment for series in rules for j in series.judgments]
    if not known:
        return None
    return min(known), max(moments)


def status_periods(series: RuleSeries, end: datetime) -> list[tuple[datetime, datetime, Status]]:
    """The published status of ``series`` as periods ``(from, to, status)`` up to ``end``.

    A status holds from the moment it was judged until the next judgment that
    changed it; the last holds to ``end``.
    """
    periods: list[tuple[datetime, datetime, Status]] = []
    current: tuple[datetime, Status] | None = None
    for judgment in series.judgments:
        if current is None or judgment.status is not current[1]:
            if current is not None:
                periods.append((current[0], judgment.moment, current[1]))
            current = (judgment.moment, judgment.status)
    if current is not None:
        periods.append((current[0], max(end, current[0]), current[1]))
    return periods
