"""The report as one self-contained HTML page: inline CSS, inline SVG, no script.

Everything the page shows that came from the input (exchange ids, reasons,
evidence, file names) is escaped here, and nothing on it refers outside the
page: no ``src``, no link to a URL, no ``@import`` or ``url()`` but to an id of
the page itself. A Content-Security-Policy of ``default-src 'none'`` says so to
the browser as well, so even a reference that slipped in would not be fetched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from monitor.core.money import amount_text, ratio_text, rfc3339
from monitor.core.status import Status
from monitor.report import charts
from monitor.report.series import (
    Alert,
    Observed,
    RuleSeries,
    exchange_order,
    shortfall,
    span,
    worst_status,
)

# charts are drawn for this many exchanges, the worst first: each costs a few charts'
# drawing time and size; the rest have their tables and evidence
CHARTED_EXCHANGES = 25

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"

_STYLE = """
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 1.5rem auto; max-width: 80rem;
       padding: 0 1rem; color: #1c1c1c; background: #ffffff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid #444444; padding-bottom: 0.2rem;
     margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.88rem; }
th, td { border: 1px solid #bbbbbb; padding: 0.2rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #eeeeee; }
td.time { white-space: nowrap; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status { font-weight: bold; padding: 0 0.35rem; border-radius: 0.25rem; color: #ffffff;
          white-space: nowrap; }
.status.ok { background: #1b5e20; }
.status.warning { background: #8d5300; }
.status.breach { background: #a31515; }
.status.unknown { background: #616161; }
figure { margin: 0.8rem 0 1.4rem 0; }
figcaption { font-size: 0.9rem; margin-bottom: 0.2rem; }
svg.chart { width: 100%; height: auto; max-width: 60rem; display: block; }
pre { background: #f5f5f5; border: 1px solid #dddddd; padding: 0.5rem; overflow-x: auto;
      font-size: 0.8rem; white-space: pre-wrap; word-break: break-word; }
.breach-evidence { border-left: 4px solid #a31515; padding-left: 0.8rem; margin: 1rem 0; }
table.evidence .value { font-family: "DejaVu Sans Mono", monospace; font-size: 0.8rem;
                        word-break: break-word; }
.note { color: #555555; font-size: 0.88rem; }
.legend span { margin-right: 1rem; }
"""


def render(observed: Observed, *, sources: Sequence[str], packs: dict[str, list[str]]) -> str:
    """The whole page. ``sources`` names the input files; ``packs`` the rule packs that
    applied to each exchange."""
    exchanges = exchange_order(observed)
    named = ", ".join(exchanges) if len(exchanges) <= 5 else f"{len(exchanges)} exchanges"
    title = "Reserve Monitor report" + (f": {named}" if exchanges else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        _introduction(observed, sources),
    ]
    if not exchanges:
        parts.append("<p>The input holds no exchange record: there is nothing to judge.</p>")
    else:
        parts.append(_summary(observed, packs))
        parts.append(_alert_table(observed.alerts, observed.currency))
        for number, exchange in enumerate(exchanges, start=1):
            parts.append(_exchange(observed, exchange, number, number <= CHARTED_EXCHANGES))
    parts.append(_problems(observed.problems))
    parts.append(
        '<footer class="note"><p>Made by <code>reserve-monitor report</code> from a replay '
        "input: the same rules as the worker, judged at every moment of each exchange's "
        "event time. How to read it: <code>docs/report.md</code> in the Reserve Monitor "
        "repository.</p></footer>"
    )
    parts.extend(["</body>", "</html>", ""])
    return "\n".join(parts)


# -- sections ----------------------------------------------------------------------


def _introduction(observed: Observed, sources: Sequence[str]) -> str:
    moments = [j.moment for series in observed.series() for j in series.judgments]
    when = (
        f"event time {_time(min(moments))} to {_time(max(moments))}"
        if moments
        else "no moment judged"
    )
    files = ", ".join(f"<code>{_e(name)}</code>" for name in sources)
    return (
        f"<p>From {files}: {observed.records:,} records, {when}. "
        f"Amounts in {_e(observed.currency)}.</p>"
        '<p class="legend note">Statuses: '
        + "".join(
            f"<span>{_badge(status)} {_e(meaning)}</span>"
            for status, meaning in (
                (Status.OK, "above the early-warning level"),
                (Status.WARNING, "under the early-warning level"),
                (Status.BREACH, "under the floor"),
                (Status.UNKNOWN, "an input is missing or too old"),
            )
        )
        + "</p>"
    )


def _summary(observed: Observed, packs: dict[str, list[str]]) -> str:
    rows = []
    currency = observed.currency
    for series in (
        s for name in exchange_order(observed) for s in observed.exchanges[name].values()
    ):
        gap = shortfall(series)
        now = gap.now
        rows.append(
            _row(
                _e(series.exchange),
                _e(", ".join(packs.get(series.exchange, []))),
                _e(series.rule),
                _badge(now.status if now else Status.UNKNOWN),
                _badge(worst_status(series)),
                str(len(series.breaches)),
                _number(_amount(gap.worst.shortfall if gap.worst else None, currency)),
                _number(_amount(now.shortfall if now else None, currency)),
            )
        )
    return (
        '<section id="summary"><h2>Summary</h2>'
        '<p class="note">Each rule of each exchange: its status at the end of the input, the '
        "worst status it had, how many times it went into breach, and the shortfall (what "
        "must be added to be compliant) at its largest and at the end.</p>"
        + _table(
            (
                "exchange",
                "packs",
                "rule",
                "status now",
                "worst status",
                "breaches",
                "largest shortfall",
                "shortfall now",
            ),
            rows,
        )
        + "</section>"
    )


def _alert_table(alerts: Sequence[Alert], currency: str) -> str:
    rows = [
        _row(
            _moment(alert.as_of),
            _e(alert.exchange),
            _e(alert.rule),
            f"{_badge(alert.previous)} → {_badge(alert.status)}",
            _number(_e(alert.data.get("ratio") or "-")),
            _number(_amount(_decimal(alert.data.get("shortfall")), currency)),
            _e(alert.reason),
        )
        for alert in alerts
    ]
    body = (
        _table(("as of", "exchange", "rule", "change", "ratio", "shortfall", "reason"), rows)
        if rows
        else "<p>No status changed.</p>"
    )
    return (
        '<section id="alerts"><h2>Alert timeline</h2>'
        '<p class="note">Every status change, as published on <code>reserve.alerts</code> '
        "(changes into or out of breach also go to <code>reserve.breaches</code>), in event "
        "time. The first judgment of a rule is a change from unknown.</p>" + body + "</section>"
    )


def _exchange(observed: Observed, exchange: str, number: int, charted: bool) -> str:
    rules = list(observed.exchanges[exchange].values())
    currency = observed.currency
    parts = [
        f'<section class="exchange" id="exchange-{_e(exchange)}">',
        f"<h2>Exchange {_e(exchange)}</h2>",
    ]
    drawn = span(rules)
    if not charted:
        parts.append(
            f'<p class="note">Charts are drawn for the first {CHARTED_EXCHANGES} exchanges, '
            "the worst first; this one has its figures and evidence only.</p>"
        )
        parts.append(_shortfalls(rules, currency))
    elif drawn is None:
        parts.append(
            "<p>No rule could judge this exchange at any moment: every status stayed unknown.</p>"
        )
        parts.append(_reasons(rules))
    else:
        start, end = drawn
        parts.append(
            "<h3>Status over time</h3>"
            f'<p class="note">Event time {_e(_time(start))} to {_e(_time(end))}: each rule\'s '
            "published status, a lane per rule.</p>"
        )
        label = f"status of each rule of {exchange} over event time"
        chart = charts.timeline_chart(
            rules, start, end, chart_id=f"x{number}-timeline", label=label
        )
        parts.append(f'<figure class="timeline">{chart}</figure>')
        parts.append(_shortfalls(rules, currency))
        parts.append(
            "<h3>Ratios against thresholds</h3>"
            '<p class="note">The ratio at every moment judged (a step line; gaps where the '
            "rule could not judge), on bands of its status: green ok, amber warning (under "
            "the early-warning level), red breach (under the floor). Dots mark the published "
            "status changes, in the colour of the new status; a breach held for the rule's "
            "<code>for</code> duration shows as the line in the red band before its dot.</p>"
        )
        for index, series in enumerate(rules, start=1):
            parts.append(_ratio_figure(series, start, end, f"x{number}-r{index}"))
    parts.append(_evidence(rules, currency))
    parts.append("</section>")
    return "\n".join(parts)


def _shortfalls(rules: Sequence[RuleSeries], currency: str) -> str:
    rows = []
    for series in rules:
        gap = shortfall(series)
        now, worst = gap.now, gap.worst
        rows.append(
            _row(
                _e(series.rule),
                _badge(now.status if now else Status.UNKNOWN),
                _number(_ratio(now.ratio if now else None)),
                _number(_amount(now.required if now else None, currency)),
                _number(_amount(now.available if now else None, currency)),
                _number(_amount(now.shortfall if now else None, currency)),
                _number(_amount(worst.shortfall, currency)) if worst else _number("none"),
                _moment(worst.moment) if worst else "-",
                _number(_ratio(worst.ratio)) if worst else "-",
            )
        )
    return (
        "<h3>Shortfall to top up</h3>"
        '<p class="note">The shortfall is what must be added to be compliant (for a '
        "liability reserve, required minus available; for a share rule, the value to move into "
        "cold storage; for a hot-wallet drain, the value that left below its allowed fall). "
        "Now: the last moment judged. Largest: the moment it was greatest.</p>"
        + _table(
            (
                "rule",
                "status now",
                "ratio now",
                "required now",
                "available now",
                "shortfall now",
                "largest shortfall",
                "at",
                "ratio then",
            ),
            rows,
        )
    )


def _ratio_figure(series: RuleSeries, start: datetime, end: datetime, chart_id: str) -> str:
    now = series.latest
    t = series.thresholds
    caption = (
        f"<strong>{_e(series.rule)}</strong> of {_e(series.exchange)}: ratio now "
        f"{_e(_ratio(now.ratio if now else None))} "
        f"{_badge(now.status if now else Status.UNKNOWN)}; warning below "
        f"{_e(str(t.warning_below))}, breach below {_e(str(t.breach_below))}. "
        f"{_e(series.reason)}"
    )
    if not series.known:
        return (
            f'<figure class="ratio"><figcaption>{caption}</figcaption>'
            "<p>This rule never had what it needs to judge: no ratio to draw.</p></figure>"
        )
    label = f"ratio of {series.rule} of {series.exchange} over event time"
    chart = charts.ratio_chart(series, start, end, chart_id=chart_id, label=label)
    return f'<figure class="ratio"><figcaption>{caption}</figcaption>{chart}</figure>'


def _evidence(rules: Sequence[RuleSeries], currency: str) -> str:
    breaches = sorted(
        (alert for series in rules for alert in series.breaches), key=lambda a: a.as_of
    )
    if not breaches:
        return "<h3>Breach evidence</h3><p>No rule of this exchange went into breach.</p>"
    parts = [
        "<h3>Breach evidence</h3>",
        '<p class="note">Each change into breach with the evidence its CloudEvent carries '
        "(<code>data.evidence</code>), as published on <code>reserve.breaches</code>.</p>",
    ]
    for alert in breaches:
        data = alert.data
        figures = _table(
            ("ratio", "required", "available", "shortfall"),
            [
                _row(
                    _number(_e(data.get("ratio") or "-")),
                    _number(_amount(_decimal(data.get("required")), currency)),
                    _number(_amount(_decimal(data.get("available")), currency)),
                    _number(_amount(_decimal(data.get("shortfall")), currency)),
                )
            ],
        )
        parts.append(
            '<article class="breach-evidence">'
            f"<h4>{_e(alert.rule)} {_badge(alert.status)} at {_e(_time(alert.as_of))} "
            f"(from {_e(alert.previous.value)})</h4>"
            f"<p>{_e(alert.reason)}</p>"
            f"{figures}"
            f"{_evidence_table(alert.evidence)}"
            f'<p class="note">CloudEvent id <code>{_e(str(alert.event.get("id", "")))}</code></p>'
            "</article>"
        )
    return "\n".join(parts)


def _reasons(rules: Iterable[RuleSeries]) -> str:
    rows = [_row(_e(series.rule), _e(series.reason)) for series in rules]
    return _table(("rule", "why"), rows)


def _problems(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    shown = "".join(f"<li>{_e(problem)}</li>" for problem in problems[:50])
    more = f"<p>… and {len(problems) - 50} more.</p>" if len(problems) > 50 else ""
    return (
        '<section id="rejected"><h2>Rejected input lines</h2>'
        f"<p>{len(problems)} lines were not taken (the worker would send them to "
        f"<code>reserve.deadletter</code>):</p><ul>{shown}</ul>{more}</section>"
    )


# -- pieces ------------------------------------------------------------------------


def _e(text: str) -> str:
    return escape(text, quote=True)


def _badge(status: Status) -> str:
    return f'<span class="status {status.value}">{status.value}</span>'


def _time(moment: datetime) -> str:
    return rfc3339(moment)


def _amount(value: Decimal | None, currency: str) -> str:
    return "-" if value is None else _e(amount_text(value, currency))


def _ratio(value: Decimal | None) -> str:
    return "-" if value is None else ratio_text(value)


def _decimal(text: Any) -> Decimal | None:
    return None if text is None else Decimal(str(text))


class _Figure(str):
    """A table cell of figures: set right-aligned."""


class _Moment(str):
    """A table cell of a time: kept on one line."""


def _moment(moment: datetime) -> str:
    return _Moment(_e(_time(moment)))


def _number(cell: str) -> str:
    """A cell already escaped, of figures."""
    return _Figure(cell)


def _row(*cells: str) -> str:
    """A table row of cells already escaped (or built of escaped pieces)."""
    out = []
    for cell in cells:
        if isinstance(cell, _Figure):
            out.append(f'<td class="number">{cell}</td>')
        elif isinstance(cell, _Moment):
            out.append(f'<td class="time">{cell}</td>')
        else:
            out.append(f"<td>{cell}</td>")
    return "<tr>" + "".join(out) + "</tr>"


def _table(header: Sequence[str], rows: Sequence[str], css: str | None = None) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    opening = f'<table class="{css}">' if css else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _evidence_table(evidence: dict[str, Any]) -> str:
    """The evidence as a table of its fields; a field holding more than text shows as
    compact JSON."""
    if not evidence:
        return '<p class="note">The CloudEvent carries no evidence.</p>'
    rows = [
        _row(f"<code>{_e(str(name))}</code>", f'<span class="value">{_e(_value(value))}</span>')
        for name, value in sorted(evidence.items())
    ]
    return _table(("evidence", "value"), rows, css="evidence")


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
