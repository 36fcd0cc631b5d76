"""The HTML report's pure parts: every judgment kept, the summaries, the page.

The page is checked as text here (escaping, nothing outside the page, ids);
``tests/integration/test_report_chromium.py`` checks what a browser shows.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.core.engine import Engine
from monitor.core.policy import load_policy
from monitor.core.status import Status, Thresholds
from monitor.replay import merged, read_lines, replay
from monitor.report import charts
from monitor.report import html as report_html
from monitor.report.command import write_report
from monitor.report.html import render
from monitor.report.series import (
    Alert,
    Judgment,
    Observed,
    RuleSeries,
    exchange_order,
    observe,
    shortfall,
    span,
    status_periods,
    worst_status,
)
from monitor.synthetic.scenarios import generate
from monitor.synthetic.simulator import write_jsonl
from tests.unit.builders import at, line, reserve_fund, trade

RESERVE = "jp.liability_reserve"
START = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def incident_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dmm-incident story as a replay file: dmm breaches four rules, calm none."""
    path = tmp_path_factory.mktemp("report") / "dmm-incident.jsonl"
    with path.open("w", encoding="utf-8") as out:
        write_jsonl(generate("dmm-incident", START, 1), out)
    return path


@pytest.fixture(scope="module")
def incident(incident_file: Path) -> Observed:
    with incident_file.open(encoding="utf-8") as lines:
        return observe(merged([lines]), load_policy(None))


@pytest.fixture(scope="module")
def page(incident: Observed, incident_file: Path) -> str:
    packs = {name: ["jp", "ops"] for name in incident.exchanges}
    return render(incident, sources=[str(incident_file)], packs=packs)


def _reserve_lines() -> list[str]:
    """A reserve fund that is ample, a little lower, short, then partly restored."""
    docs = [
        trade("1000000", when=at()),
        reserve_fund("3000000000", when=at()),
        reserve_fund("2800000000", when=at(seconds=30)),
        reserve_fund("1500000000", when=at(minutes=1)),
        reserve_fund("2300000000", when=at(minutes=2)),
    ]
    return [line(doc) for doc in docs]


def _reserve_story() -> Observed:
    return observe(read_lines(_reserve_lines()), load_policy(None))


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    path = tmp_path / "reserve.jsonl"
    path.write_text("".join(_reserve_lines()), encoding="utf-8")
    return path


# -- every judgment ----------------------------------------------------------------


def test_every_moment_is_kept_with_the_figures_judged_then() -> None:
    series = _reserve_story().exchanges["dmm"][RESERVE]
    # the floor is the ¥2 bn minimum; the moment at +30 s changes no status, and is kept
    # with its own figures (a guarded engine would not have measured it again)
    assert [(j.moment, j.ratio, j.status, j.shortfall) for j in series.judgments] == [
        (at(), Decimal("1.5"), Status.OK, Decimal(0)),
        (at(seconds=30), Decimal("1.4"), Status.OK, Decimal(0)),
        (at(minutes=1), Decimal("0.75"), Status.BREACH, Decimal("500000000")),
        (at(minutes=2), Decimal("1.15"), Status.WARNING, Decimal(0)),
    ]
    assert [(a.as_of, a.previous, a.status) for a in series.alerts] == [
        (at(), Status.UNKNOWN, Status.OK),
        (at(minutes=1), Status.OK, Status.BREACH),
        (at(minutes=2), Status.BREACH, Status.WARNING),
    ]
    assert series.reason.startswith("Reserve")  # the last judgment's words


def test_moments_judged_after_quiet_append_time_are_kept_at_their_own_moment() -> None:
    # record timestamps a minute apart: each moment is judged by the quiet gap, before
    # the next record arrives, and still kept at its own event time
    docs = [
        trade("1000000", when=at()),
        reserve_fund("3000000000", when=at()),
        reserve_fund("1500000000", when=at(minutes=1)),
    ]
    lines = []
    for n, doc in enumerate(docs):
        record = json.loads(line(doc))
        record["timestamp"] = (START + timedelta(minutes=n)).isoformat()
        lines.append(json.dumps(record))
    series = observe(read_lines(lines), load_policy(None)).exchanges["dmm"][RESERVE]
    assert [(j.moment, j.ratio) for j in series.judgments] == [
        (at(), Decimal("1.5")),
        (at(minutes=1), Decimal("0.75")),
    ]


def test_the_alerts_are_the_cloudevents_replay_prints(incident: Observed, incident_file: Path):
    printed = io.StringIO()
    with incident_file.open(encoding="utf-8") as lines:
        replay(lines, Engine(load_policy(None), journal=False), printed)
    assert [json.dumps(alert.event) for alert in incident.alerts] == printed.getvalue().split("\n")[
        :-1
    ]
    assert len(incident.alerts) > 10


def test_a_breach_held_for_its_duration_shows_under_the_floor_before_it_is_published(
    incident: Observed,
) -> None:
    cold = incident.exchanges["dmm"]["jp.cold_storage"]
    published = cold.breaches[0].as_of
    held = [j for j in cold.judgments if j.level is Status.BREACH and j.status is Status.OK]
    assert held, "the cold share fell under the floor before the breach was published"
    assert held[0].moment < published
    assert published - held[0].moment >= timedelta(minutes=5)  # jp.cold_storage's for: 5m
    first_breach = next(j for j in cold.judgments if j.status is Status.BREACH)
    assert first_breach.moment == published


# -- summaries ---------------------------------------------------------------------


def test_the_shortfall_is_the_largest_one_and_the_last_one() -> None:
    gap = shortfall(_reserve_story().exchanges["dmm"][RESERVE])
    assert gap.worst is not None
    assert (gap.worst.moment, gap.worst.shortfall) == (at(minutes=1), Decimal("500000000"))
    assert gap.now is not None and gap.now.shortfall == 0


def test_statuses_as_periods_and_the_worst_status() -> None:
    series = _reserve_story().exchanges["dmm"][RESERVE]
    assert status_periods(series, at(minutes=5)) == [
        (at(), at(minutes=1), Status.OK),
        (at(minutes=1), at(minutes=2), Status.BREACH),
        (at(minutes=2), at(minutes=5), Status.WARNING),
    ]
    assert worst_status(series) is Status.BREACH


def test_the_span_drawn_leaves_out_the_history_before_any_rule_could_judge(
    incident: Observed,
) -> None:
    drawn = span(incident.exchanges["dmm"].values())
    first = min(j.moment for s in incident.exchanges["dmm"].values() for j in s.judgments)
    assert drawn is not None
    assert first <= START - timedelta(hours=23)  # a day of trades before the story
    assert drawn[0] == START


def test_exchanges_with_a_breach_come_first(incident: Observed) -> None:
    assert exchange_order(incident) == ["dmm", "calm"]


def test_a_long_series_is_thinned_but_keeps_its_extremes_and_changes() -> None:
    thresholds = Thresholds(Decimal("1"), Decimal("1.2"), Decimal("0.02"))
    judgments = []
    for n in range(20_000):
        ratio = Decimal("1.5") + Decimal(n % 7) / 100
        if n == 12_345:
            ratio = Decimal("0.3")
        status = Status.BREACH if n == 12_345 else Status.OK
        judgments.append(
            Judgment(START + timedelta(seconds=n), status, status, ratio, None, None, None)
        )
    kept = charts.thin(judgments)
    assert len(kept) <= charts.MAX_POINTS
    assert judgments[12_345] in kept and judgments[12_346] in kept  # into and out of breach
    assert kept[0] is judgments[0] and kept[-1] is judgments[-1]
    assert max(j.ratio for j in kept if j.ratio) == Decimal("1.56")
    assert kept == sorted(kept, key=lambda j: j.moment)
    series = RuleSeries("dmm", RESERVE, thresholds, judgments)
    svg = charts.ratio_chart(
        series, judgments[0].moment, judgments[-1].moment, chart_id="t", label="x"
    )
    assert svg.startswith("<svg")


# -- the page ----------------------------------------------------------------------


class _Page(HTMLParser):
    """Tags, attributes, ids, references and text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        self.attributes.extend((tag, name, value or "") for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def _parsed(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def test_the_page_refers_to_nothing_outside_itself(page: str) -> None:
    parsed = _parsed(page)
    for tag in ("script", "link", "img", "iframe", "object", "embed", "base", "audio", "video"):
        assert tag not in parsed.tags
    references = [
        (tag, name, value)
        for tag, name, value in parsed.attributes
        if name in ("href", "xlink:href", "src", "srcset", "action", "poster", "data")
    ]
    assert references, "the charts' glyphs and markers refer to ids of the page"
    assert all(value.startswith("#") for _, _, value in references), references
    for _, name, value in parsed.attributes:
        for url in re.findall(r"url\(([^)]*)\)", value):
            assert url.startswith("#"), (name, value)
    for style in parsed.styles:
        assert "@import" not in style and "url(" not in style
    # this page carries no URL at all, not even in its text: nothing can be fetched
    assert "http://" not in page and "https://" not in page
    assert ("meta", "content", "default-src 'none'; style-src 'unsafe-inline'") in (
        parsed.attributes
    )


def test_every_id_is_unique_and_every_reference_is_to_one(page: str) -> None:
    parsed = _parsed(page)
    ids = [value for _, name, value in parsed.attributes if name == "id"]
    assert len(ids) == len(set(ids))
    referred = {value[1:] for _, name, value in parsed.attributes if name.endswith("href")}
    referred |= {
        url[1:] for _, _, value in parsed.attributes for url in re.findall(r"url\(([^)]*)\)", value)
    }
    assert referred and referred <= set(ids)


def test_the_page_shows_each_exchange_its_breaches_and_their_evidence(page: str) -> None:
    text = " ".join(" ".join(_parsed(page).text).split())
    assert "Exchange dmm" in text and "Exchange calm" in text
    for rule in ("jp.liability_reserve", "jp.cold_storage", "jp.segregation"):
        assert f"{rule} breach at" in text  # a breach-evidence heading
    assert "ops.hot_wallet_drain breach at 2024-05-31T13:08:10Z" in text
    assert "btc-hot-1" in text  # the drain's evidence names the wallet that fell
    assert "Shortfall to top up" in text and "Alert timeline" in text
    assert len(re.findall(r'<svg [^>]*class="chart"', page)) == 2 * (
        1 + 5
    )  # a timeline and 5 rules each


def test_charts_are_drawn_for_the_worst_exchanges_only(
    incident: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_html, "CHARTED_EXCHANGES", 1)
    page = render(incident, sources=["in.jsonl"], packs={})
    assert len(re.findall(r'<svg [^>]*class="chart"', page)) == 1 + 5  # dmm's, not calm's
    assert "Charts are drawn for the first 1 exchanges" in page
    assert page.count("Shortfall to top up") == 2


def test_an_exchange_no_rule_could_judge_is_said_so() -> None:
    lines = [line(trade("1000000", when=at(), exchange="quiet"))]
    observed = observe(read_lines(lines), load_policy(None))
    assert span(observed.exchanges["quiet"].values()) is None
    page = render(observed, sources=["in.jsonl"], packs={})
    assert "No rule could judge this exchange at any moment" in page
    assert "<svg" not in page
    text = " ".join(_parsed(page).text)
    assert "jp.liability_reserve no reserve_fund figure has arrived for quiet yet" in text
    assert "jp.cold_storage no wallet_balances data has arrived for quiet yet" in text


def test_what_came_from_the_input_is_escaped() -> None:
    hostile = "<script>alert('x')</script> & \"quoted\""
    judged = Judgment(START, Status.BREACH, Status.BREACH, Decimal("0.5"), None, None, None)
    event = {
        "id": "e-1",
        "data": {
            "ratio": "0.5",
            "reason": hostile,
            "evidence": {"wallet": hostile, hostile: ["<b>"]},
        },
    }
    alert = Alert("dmm", RESERVE, Status.BREACH, Status.OK, START, event)
    series = RuleSeries(
        "dmm",
        RESERVE,
        Thresholds(Decimal("1"), Decimal("1.2"), Decimal("0")),
        [judged],
        [alert],
        reason=hostile,
    )
    observed = Observed("JPY", {"dmm": {RESERVE: series}}, [alert])
    page = render(observed, sources=["<in>.jsonl"], packs={"dmm": ["jp"]})
    assert "<script" not in page and "<b>" not in page and "<in>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    text = " ".join(_parsed(page).text)
    assert hostile in text  # shown as it was, as text


def test_the_same_input_gives_the_same_page(story_file: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "1.html", tmp_path / "2.html"
    write_report(story_file, first)
    write_report([story_file], second)
    assert first.read_bytes() == second.read_bytes()
    assert b"jp.liability_reserve" in first.read_bytes()


def test_records_in_hand_give_the_page_their_file_gives(
    incident_file: Path, page: str, tmp_path: Path
) -> None:
    from_records = write_report(generate("dmm-incident", START, 1), tmp_path / "records.html")
    written = from_records.read_text(encoding="utf-8")
    assert written.replace("(records)", str(incident_file)) == page


# -- the command -------------------------------------------------------------------


def test_the_command_writes_the_page_and_says_where(
    story_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(story_file), "--html", str(out)]) == 0
    said = capsys.readouterr().out
    assert said == f"report written to {out}: 1 exchange, 3 status changes, 1 into breach\n"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_command_refuses_input_without_an_exchange(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"topic": "exchange.trades", "value": {"exchange": "dmm"}}\nnot json\n')
    out = tmp_path / "report.html"
    assert main(["report", str(bad), "--html", str(out)]) == 1
    err = capsys.readouterr().err
    assert "report: the input holds no exchange record to report on; 2 lines were rejected" in err
    assert "line 1:" in err
    assert not out.exists()


def test_the_command_names_a_file_it_cannot_read_or_write(
    story_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["report", str(missing), "--html", str(tmp_path / "r.html")]) == 1
    assert f"cannot read {missing}: No such file or directory" in capsys.readouterr().err
    nowhere = tmp_path / "no-such-dir" / "r.html"
    assert main(["report", str(story_file), "--html", str(nowhere)]) == 1
    assert f"report: cannot write {nowhere}: no directory {nowhere.parent}" in (
        capsys.readouterr().err
    )
    assert main(["report", str(story_file), "--html", str(tmp_path)]) == 1  # a directory
    assert f"report: cannot write {tmp_path}: Is a directory" in capsys.readouterr().err
