"""A long replay or report says how far it has come on stderr, and nothing else changes."""

from __future__ import annotations

import io
import json
import math
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.policy import load_policy
from monitor.progress import Progress
from monitor.replay import AHEAD, run
from monitor.report import command as report_command
from monitor.synthetic.scenarios import steady
from monitor.synthetic.simulator import write_jsonl

START = datetime(2026, 1, 1, tzinfo=UTC)
LINE = re.compile(
    r"^(?P<what>replay|report): (?P<share>\d+)% of (?P<size>[\d.]+ (?:KB|MB|GB)) read, "
    r"(?P<records>[\d,]+) records, record time (?P<time>\S+), [\d,]+ records/s"
    r"(?:, about (?P<left>\d+ (?:s|min)|[\d.]+ h) left)?$"
)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten minutes of five exchanges: a few thousand lines, a few hundred KB."""
    path = tmp_path_factory.mktemp("progress") / "steady.jsonl"
    with path.open("w", encoding="utf-8") as file:
        write_jsonl(steady(START, 7, exchanges=5, duration=600), file)
    return path


def _replay(paths: list[str], progress_seconds: float | None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    assert run(paths, load_policy(None), out, err, "reserve-monitor", None, progress_seconds) == 0
    return out.getvalue(), err.getvalue()


def _said(err: str) -> list[re.Match[str]]:
    lines = [text for text in err.splitlines() if text.startswith(("replay:", "report:"))]
    matches = [LINE.match(text) for text in lines]
    assert all(matches), lines  # every progress line has the documented form
    return [m for m in matches if m is not None]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _bytes(text: str) -> int:
    """The size a progress line gives, in bytes (to the precision it gives)."""
    number, unit = text.split()
    return round(float(number) * {"KB": 10**3, "MB": 10**6, "GB": 10**9}[unit])


def _record_times(path: Path) -> list[str]:
    return [json.loads(text)["value"]["ts"] for text in path.read_text().splitlines()]


def test_a_replay_says_how_far_it_has_come_after_each_batch_when_asked(market: Path) -> None:
    total = len(market.read_text().splitlines())
    quiet_out, quiet_err = _replay([str(market)], progress_seconds=math.inf)
    out, err = _replay([str(market)], progress_seconds=0.0)

    # the CloudEvents and the final table are those of a replay that says nothing
    assert out == quiet_out and out
    assert err.endswith(quiet_err)
    said = _said(err)
    assert not _said(quiet_err)  # a replay that ends within the interval says nothing more

    # one line a batch taken, its records counted, its last line's time, the share read
    assert len(said) == -(-total // AHEAD)
    records = [int(m["records"].replace(",", "")) for m in said]
    assert records == [min(total, AHEAD * (n + 1)) for n in range(len(said))]
    times = _record_times(market)
    assert [_instant(m["time"]) for m in said] == [_instant(times[n - 1]) for n in records]
    shares = [int(m["share"]) for m in said]
    assert shares == sorted(shares) and shares[-1] == 100 and shares[0] < 100
    assert all(m["left"] is not None for m in said if int(m["share"]) not in (0, 100))
    [size] = {_bytes(m["size"]) for m in said}
    assert abs(size - market.stat().st_size) <= 50  # in KB, to a tenth


def test_several_files_are_read_as_one_input(market: Path, tmp_path: Path) -> None:
    second = tmp_path / "again.jsonl"
    second.write_text(market.read_text().replace('"ex-0', '"other-ex-0'))
    said = _said(_replay([str(market), str(second)], progress_seconds=0.0)[1])
    both = len(market.read_text().splitlines()) * 2
    assert int(said[-1]["records"].replace(",", "")) == both
    assert int(said[-1]["share"]) == 100
    size = market.stat().st_size + second.stat().st_size
    assert abs(_bytes(said[-1]["size"]) - size) <= 50_000  # in MB, to a tenth


def test_stdin_says_nothing_of_its_progress(market: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a pipe has no size, and a live one never ends: its stderr keeps to the table
    monkeypatch.setattr(sys, "stdin", io.StringIO(market.read_text()))
    out, err = _replay(["-"], progress_seconds=0.0)
    assert out and not _said(err)


def test_the_report_says_how_far_it_has_come(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("monitor.progress.PROGRESS_SECONDS", 0.0)
    err = io.StringIO()
    page, observed = report_command._write(
        [str(market)], tmp_path / "r.html", load_policy(None), "reserve-monitor", err
    )
    said = _said(err.getvalue())
    assert said and {m["what"] for m in said} == {"report"}
    assert int(said[-1]["records"].replace(",", "")) == observed.records
    assert int(said[-1]["share"]) == 100 and page.exists()


def test_the_interval_is_kept_and_the_time_left_follows_the_rate(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("x" * 100_000)
    now = [0.0]
    err = io.StringIO()
    with path.open(encoding="utf-8") as file:
        progress = Progress("replay", [file], err, every=10.0, clock=lambda: now[0])
        file.read(50_000)
        share = file.buffer.tell() / 100_000  # what the text layer has read of the bytes
        when = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
        for second in (5.0, 9.9):
            now[0] = second
            progress.taken(100, when)
        assert err.getvalue() == ""  # not before the interval
        now[0] = 20.0
        progress.taken(300, None)  # a line without a time keeps the time reached
        now[0] = 25.0
        progress.taken(100, None)
        assert len(err.getvalue().splitlines()) == 1  # the next not before 30 s
    [said] = _said(err.getvalue())
    assert said["share"] == f"{share:.0%}".rstrip("%") and said["size"] == "100.0 KB"
    assert said["records"] == "500" and said["time"] == "2026-01-01T00:01:00Z"
    assert f", 25 records/s, about {round(20 * (1 - share) / share)} s left" in said.string
