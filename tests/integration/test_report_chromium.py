"""``reserve-monitor report`` as a person sees it: rendered by a real headless Chromium.

The dmm-incident story goes through the real command; Chromium (Debian's
``chromium``, installed by ``make chromium``) then takes a screenshot of the
page and dumps its DOM. The test checks what a person would see: the charts
are drawn (their status bands and ratio lines are on the screen, the red
breach band included), and the exchange, its breached rules and the word
breach are in the rendered page.

It also checks that the page made Chromium fetch nothing. Chromium's own
services (component updates, network time, sign-in) talk to the network by
themselves whatever the page holds, so "no request at all" cannot be asked.
Chromium's NetLog tells them apart: every request made on behalf of the page
is isolated by the page's site, ``file://``; the services' are not. A control
page with two external images shows the check sees a page's fetches. And
``--host-resolver-rules`` resolves no name, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from monitor.core.status import Status
from monitor.report.charts import BAND_COLOURS, RATIO_COLOUR, STATUS_COLOURS
from monitor.synthetic.scenarios import generate
from monitor.synthetic.simulator import write_jsonl

WINDOW = (1280, 10000)  # tall enough for the summary, the alerts and dmm's charts
CHROMIUM_TIMEOUT = 180.0  # a bound on a hung browser, not a timing under test
FLAGS = [
    "--headless",
    "--no-sandbox",  # we run as root in the test container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-color-profile=srgb",  # the screenshot's colours are the page's own
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: nothing leaves the machine
]
START = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)


def _chromium() -> str:
    binary = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium")
    if binary is None:
        pytest.fail("no chromium here: run `make chromium` (deploy/chromium/install.sh)")
    return binary


def _render(page: Path, work: Path, name: str, *action: str) -> tuple[str, list[str]]:
    """Run Chromium on ``page`` with ``action``; its stdout, and the URLs the page fetched."""
    net_log = work / f"{name}.netlog.json"
    result = subprocess.run(
        [
            _chromium(),
            *FLAGS,
            f"--user-data-dir={work / (name + '-profile')}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--log-net-log={net_log}",
            *action,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, _page_requests(net_log)


def _page_requests(net_log: Path) -> list[str]:
    """The URLs requested on behalf of a ``file://`` page, from Chromium's NetLog."""
    text = net_log.read_text(encoding="utf-8").rstrip().rstrip(",")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log Chromium did not close: its events are whole
        log = json.loads(text + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and "file://" in event["params"].get("network_isolation_key", "")
    ]


class _Text(HTMLParser):
    """The text of a DOM (style and script left out) and its charts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.charts = 0
        self.paths = 0
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title"):
            self._hidden += 1
        if tag == "svg" and "chart" in (dict(attrs).get("class") or "").split():
            self.charts += 1
        if tag in ("path", "use"):
            self.paths += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _pixels_near(counts: Counter[tuple[int, int, int]], colour: str, tolerance: int = 3) -> int:
    """How many pixels have ``colour``, give or take ``tolerance`` per channel."""
    target = _rgb(colour)
    return sum(
        n
        for rgb, n in counts.items()
        if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-chromium")


@pytest.fixture(scope="module")
def report(work: Path) -> Path:
    """The dmm-incident replay input through the real ``reserve-monitor report``."""
    source = work / "dmm-incident.jsonl"
    with source.open("w", encoding="utf-8") as out:
        write_jsonl(generate("dmm-incident", START, 1), out)
    page = work / "report.html"
    command = Path(sys.executable).parent / "reserve-monitor"
    result = subprocess.run(
        [str(command), "report", str(source), "--html", str(page)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == f"report written to {page}: 2 exchanges, 18 status changes, 4 into breach\n"
    )
    return page


def test_the_charts_are_drawn_on_screen(report: Path, work: Path) -> None:
    shot = work / "report.png"
    _, fetched = _render(report, work, "shot", f"--screenshot={shot}")
    assert fetched == []
    with Image.open(shot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert colours is not None
    counts: Counter[tuple[int, int, int]] = Counter({rgb: n for n, rgb in colours})
    # each ratio chart is about 860 x 180 px on this window, its bands most of that
    breach_band = _pixels_near(counts, BAND_COLOURS[Status.BREACH])
    warning_band = _pixels_near(counts, BAND_COLOURS[Status.WARNING])
    ok_band = _pixels_near(counts, BAND_COLOURS[Status.OK])
    ratio_line = _pixels_near(counts, RATIO_COLOUR, tolerance=8)
    breach_lanes = _pixels_near(counts, STATUS_COLOURS[Status.BREACH])
    assert breach_band > 100_000, breach_band  # dmm's four breaches fill red bands
    assert warning_band > 20_000, warning_band
    assert ok_band > 100_000, ok_band
    assert ratio_line > 3_000, ratio_line  # the ratio lines over the bands
    assert breach_lanes > 5_000, breach_lanes  # the timeline's red periods, the dots
    assert len(counts) > 50  # text, lines and bands, not a blank page


def test_the_exchange_and_its_breaches_are_on_the_page(report: Path, work: Path) -> None:
    dom, fetched = _render(report, work, "dom", "--dump-dom")
    assert fetched == []
    page = _Text()
    page.feed(dom)
    text = page.text
    assert "Reserve Monitor report: dmm, calm" in text
    assert "Exchange dmm" in text and "Exchange calm" in text
    for rule, moment in (
        ("jp.liability_reserve", "2024-05-31T13:01:02Z"),
        ("jp.cold_storage", "2024-05-31T13:07:12.240000Z"),
        ("ops.hot_wallet_drain", "2024-05-31T13:08:10Z"),
        ("jp.segregation", "2024-05-31T13:13:10Z"),
    ):
        assert f"{rule} breach at {moment} (from ok)" in text  # its breach evidence
    assert "dmm jp.liability_reserve ok → breach 0.842657 1,307,053,280 JPY" in text
    assert "Shortfall to top up" in text
    assert page.charts == 2 * (1 + 5)  # per exchange a timeline and one chart per rule
    assert page.paths > 1000  # the charts' shapes and glyphs are in the DOM


def test_the_check_sees_a_page_that_fetches(work: Path) -> None:
    control = work / "control.html"
    control.write_text(
        "<!DOCTYPE html><p>control</p>"
        '<img src="http://report-control.invalid/a.png">'
        '<img src="https://report-control.invalid/b.png">',
        encoding="utf-8",
    )
    _, fetched = _render(control, work, "control", f"--screenshot={work / 'control.png'}")
    assert sorted(fetched) == [
        "http://report-control.invalid/a.png",
        "https://report-control.invalid/b.png",
    ]
