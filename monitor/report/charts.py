"""The report's pictures: matplotlib figures rendered to inline SVG.

Nothing is fetched to draw them: the Agg-free SVG backend is used through a
plain :class:`~matplotlib.figure.Figure` (no pyplot, no global figure state),
text is drawn as paths in matplotlib's own DejaVu font, and the XML prolog, the
DOCTYPE and the namespace declarations (the only URLs matplotlib writes) are
dropped: an ``<svg>`` inside HTML needs none of them. Each chart's ids get a
prefix of their own, so several charts on one page never share an id. The same
figures give the same bytes (``svg.hashsalt`` is fixed).

Ratios are drawn as floats: a picture needs no more than a few digits, and every
figure printed on the page comes from the decimals themselves.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

import matplotlib
from matplotlib import dates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from monitor.core.status import Status
from monitor.report.series import Judgment, RuleSeries, status_periods

# the background bands of a ratio chart, by the status a ratio there has
BAND_COLOURS = {
    Status.OK: "#cfe8cf",
    Status.WARNING: "#fbe1a0",
    Status.BREACH: "#f2b3ae",
}
# a status as a mark or a lane of the timeline
STATUS_COLOURS = {
    Status.OK: "#2e7d32",
    Status.WARNING: "#d68a00",
    Status.BREACH: "#c62828",
    Status.UNKNOWN: "#9e9e9e",
}
RATIO_COLOUR = "#1a237e"
# above this many points a ratio line keeps, per slice of time, only its lowest and
# highest ratio (and every status change): the SVG stays small, the shape the same
MAX_POINTS = 4000

_METADATA: dict[str, str | None] = {"Creator": None, "Date": None, "Format": None, "Type": None}
_ID = re.compile(r'\bid="([^"]+)"')
_NAMESPACE = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
# an id, or a reference to one: xlink:href="#id", url(#id)
_REFERENCE = re.compile(r'(\bid="|"#|url\(#)([^")]+)')
_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')


def ratio_chart(
    series: RuleSeries, start: datetime, end: datetime, *, chart_id: str, label: str
) -> str:
    """The ratio of one rule over event time, on bands of its thresholds, as SVG."""
    figure = Figure(figsize=(9.0, 2.5))
    # fixed margins (a layout engine would draw every chart twice): tick labels and the
    # axis label on the left, the threshold names on the right
    axes = figure.add_axes((0.09, 0.2, 0.76, 0.75))
    points = thin([j for j in series.judgments if start <= j.moment <= end])
    x = [_day_number(j.moment) for j in points]
    y = [math.nan if j.ratio is None else float(j.ratio) for j in points]
    if points and points[-1].moment < end:  # the last ratio holds to the end of the span
        x.append(_day_number(end))
        y.append(y[-1])
    t = series.thresholds
    breach, warning = float(t.breach_below), float(t.warning_below)
    low, high = _limits([v for v in y if not math.isnan(v)], breach, warning)
    axes.axhspan(low, breach, color=BAND_COLOURS[Status.BREACH], lw=0)
    axes.axhspan(breach, warning, color=BAND_COLOURS[Status.WARNING], lw=0)
    axes.axhspan(warning, high, color=BAND_COLOURS[Status.OK], lw=0)
    axes.axhline(breach, color=STATUS_COLOURS[Status.BREACH], lw=0.8, ls="--")
    axes.axhline(warning, color=STATUS_COLOURS[Status.WARNING], lw=0.8, ls="--")
    axes.plot(x, y, drawstyle="steps-post", color=RATIO_COLOUR, lw=1.6)
    for alert in series.alerts:
        ratio = alert.data.get("ratio")
        if ratio is None or not start <= alert.as_of <= end:
            continue
        axes.plot(
            [_day_number(alert.as_of)],
            [float(ratio)],
            marker="o",
            markersize=7,
            color=STATUS_COLOURS[alert.status],
            markeredgecolor="#000000",
            markeredgewidth=0.6,
            linestyle="none",
        )
    axes.set_ylim(low, high)
    axes.set_ylabel("ratio")
    # the threshold levels named at the right edge, beside their lines (apart when close)
    close = warning - breach < (high - low) / 10
    for level, text, status, placed in (
        (breach, f"breach < {t.breach_below}", Status.BREACH, "top" if close else "center"),
        (warning, f"warning < {t.warning_below}", Status.WARNING, "bottom" if close else "center"),
    ):
        axes.annotate(
            text,
            (1.005, level),
            xycoords=("axes fraction", "data"),
            va=placed,
            color=STATUS_COLOURS[status],
        )
    _time_axis(axes, start, end)
    return _svg(figure, chart_id, label)


def timeline_chart(
    rules: Sequence[RuleSeries], start: datetime, end: datetime, *, chart_id: str, label: str
) -> str:
    """Each rule's published status over event time as a lane of coloured periods, as SVG."""
    height = 0.8 + 0.42 * len(rules)
    figure = Figure(figsize=(9.0, height))
    # fixed margins: the rule ids on the left, the time axis below (0.65 inch)
    axes = figure.add_axes((0.2, 0.65 / height, 0.77, 1 - 0.8 / height))
    span = max((end - start).total_seconds(), 1.0)
    for lane, series in enumerate(reversed(rules)):
        for begin, until, status in status_periods(series, end):
            begin, until = max(begin, start), min(until, end)
            if until < begin:
                continue
            left = _day_number(begin)
            width = max(_day_number(until) - left, span / 86400 / 400)  # a moment: a sliver
            axes.broken_barh(
                [(left, width)], (lane - 0.35, 0.7), facecolors=STATUS_COLOURS[status], lw=0
            )
    axes.set_yticks(range(len(rules)), [series.rule for series in reversed(rules)])
    axes.set_ylim(-0.6, len(rules) - 0.4)
    _time_axis(axes, start, end)
    return _svg(figure, chart_id, label)


def thin(points: list[Judgment]) -> list[Judgment]:
    """At most about :data:`MAX_POINTS` judgments with the same shape: per slice of
    time its lowest and highest ratio, and every judgment whose status changed."""
    if len(points) <= MAX_POINTS:
        return points
    slices = MAX_POINTS // 3
    first, last = points[0].moment, points[-1].moment
    width = (last - first) / slices
    kept: dict[int, Judgment] = {0: points[0], len(points) - 1: points[-1]}
    lowest: dict[int, tuple[float, int]] = {}
    highest: dict[int, tuple[float, int]] = {}
    previous: Status | None = None
    for index, judgment in enumerate(points):
        if judgment.status is not previous or judgment.ratio is None:
            kept[index] = judgment  # a change, or a gap the line must show
        previous = judgment.status
        if judgment.ratio is None:
            continue
        part = min(int((judgment.moment - first) / width), slices - 1) if width else 0
        value = float(judgment.ratio)
        if part not in lowest or value < lowest[part][0]:
            lowest[part] = (value, index)
        if part not in highest or value > highest[part][0]:
            highest[part] = (value, index)
    for _, index in (*lowest.values(), *highest.values()):
        kept[index] = points[index]
    return [kept[index] for index in sorted(kept)]


def _limits(values: list[float], breach: float, warning: float) -> tuple[float, float]:
    """The ratio axis: every ratio and both thresholds, with a margin."""
    low = min([*values, breach])
    high = max([*values, warning])
    margin = (high - low) * 0.12 or max(abs(high) * 0.05, 0.05)
    return max(low - margin, 0.0) if low >= 0 else low - margin, high + margin


def _time_axis(axes: Axes, start: datetime, end: datetime) -> None:
    if end <= start:  # a single moment: a minute either side
        start, end = start.replace(second=0), end.replace(second=59)
    axes.set_xlim(_day_number(start), _day_number(end))
    locator = dates.AutoDateLocator(tz=UTC, minticks=4, maxticks=9)  # type: ignore[no-untyped-call]  # matplotlib.dates is not annotated
    formatter = dates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]  # as above
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(formatter)
    axes.set_xlabel("event time (UTC)", fontsize=8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _day_number(moment: datetime) -> float:
    """Event time as matplotlib's axis unit (days since its epoch)."""
    return float(dates.date2num(moment))  # type: ignore[no-untyped-call]  # not annotated


def _svg(figure: Figure, chart_id: str, label: str) -> str:
    """``figure`` as an ``<svg>`` element for an HTML page (see the module docstring)."""
    text = io.StringIO()
    with matplotlib.rc_context(
        {
            "svg.fonttype": "path",  # text as paths: the page needs no font
            "svg.hashsalt": "reserve-monitor-report",  # the same figure, the same ids
            "font.family": "DejaVu Sans",  # shipped with matplotlib
            "font.size": 9,
            "timezone": "UTC",
        }
    ):
        figure.savefig(text, format="svg", metadata=_METADATA)
    return inline_svg(text.getvalue(), chart_id, label)


def inline_svg(document: str, chart_id: str, label: str) -> str:
    """An SVG document as an element of an HTML page: no prolog, no namespace URLs, ids
    prefixed with ``chart_id``, sized by CSS, labelled for screen readers (``label`` is
    escaped here)."""
    element = document[document.index("<svg") :]
    opening_end = element.index(">")
    opening = _SIZE.sub("", _NAMESPACE.sub("", element[:opening_end]))
    opening += f' class="chart" role="img" aria-label="{escape(label)}"'
    element = opening + element[opening_end:]
    names = set(_ID.findall(element))

    def prefixed(match: re.Match[str]) -> str:
        lead, name = match.group(1), match.group(2)
        return f"{lead}{chart_id}-{name}" if name in names else match.group(0)

    return _REFERENCE.sub(prefixed, element).strip()
