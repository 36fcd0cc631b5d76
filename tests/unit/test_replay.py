"""replay: JSON Lines in, the worker's CloudEvents out, deterministic to the byte."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.core.engine import Engine
from monitor.core.events import Topic
from monitor.core.policy import load_policy
from monitor.replay import AHEAD, replay
from tests.unit.builders import (
    at,
    line,
    price,
    reserve_fund,
    trade,
    wallet,
)

CLI = Path(sys.executable).with_name("reserve-monitor")
BILLION = 10**9
DATA_FIELDS = {
    "exchange",
    "rule",
    "status",
    "previous_status",
    "ratio",
    "required",
    "available",
    "shortfall",
    "currency",
    "as_of",
    "reason",
    "evidence",
}


def story() -> list[str]:
    """A healthy exchange, a volume surge that lifts its floor, a top-up."""
    return [
        line(price("10000000", event_id="p-1"), key="BTC"),
        line(wallet("96", wallet_id="btc-cold-1", event_id="w-1"), key="dmm"),
        line(wallet("4", wallet_id="btc-hot-1", custody="hot", event_id="w-2"), key="dmm"),
        line(reserve_fund(3 * BILLION, event_id="f-1"), key="dmm"),
        line(trade(1_000 * BILLION, when=at(minutes=10), event_id="t-1"), key="dmm"),
        line(reserve_fund(7 * BILLION, when=at(minutes=30), event_id="f-2"), key="dmm"),
    ]


def run(lines: list[str], app_id: str = "reserve-monitor", ahead: int = 1) -> tuple[str, Any]:
    out = io.StringIO()
    result = replay(lines, Engine(load_policy()), out, app_id=app_id, ahead=ahead)
    return out.getvalue(), result


def events_of(output: str) -> list[dict[str, Any]]:
    return [json.loads(text) for text in output.splitlines()]


def test_each_status_change_is_a_contract_cloudevent() -> None:
    output, result = run(story(), app_id="tokyo-1")
    events = events_of(output)
    assert result.changes == len(events)
    for cloud_event in events:
        assert cloud_event["specversion"] == "1.0"
        assert cloud_event["source"] == "reserve-monitor/tokyo-1"
        assert cloud_event["type"] == "reserve.status.changed"
        assert cloud_event["datacontenttype"] == "application/json"
        data = cloud_event["data"]
        assert set(data) == DATA_FIELDS
        assert cloud_event["subject"] == f"{data['exchange']}/{data['rule']}"
        assert data["currency"] == "JPY"
        assert data["as_of"] == cloud_event["time"]  # the clock is event time
        assert datetime.fromisoformat(cloud_event["time"]).utcoffset() is not None
        assert cloud_event["id"]
    assert len({e["id"] for e in events}) == len(events)


def test_the_story_tells_ok_breach_ok() -> None:
    events = events_of(run(story())[0])
    reserve = [e["data"] for e in events if e["data"]["rule"] == "jp.liability_reserve"]
    assert [(d["previous_status"], d["status"]) for d in reserve] == [
        ("unknown", "ok"),
        ("ok", "breach"),
        ("breach", "ok"),
    ]
    breach = reserve[1]
    assert breach["required"] == "5000000000"
    assert breach["available"] == "3000000000"
    assert breach["shortfall"] == "2000000000"
    assert breach["ratio"] == "0.6"
    assert breach["as_of"] == "2024-05-31T13:10:00Z"
    assert "add 2,000,000,000 JPY" in breach["reason"]
    cold = [e["data"] for e in events if e["data"]["rule"] == "jp.cold_storage"]
    assert [(d["previous_status"], d["status"]) for d in cold] == [("unknown", "ok")]


def test_two_replays_give_byte_identical_output() -> None:
    assert run(story())[0] == run(story())[0]


def with_bad_lines() -> list[str]:
    """The story with bad lines among its good ones: 7 invalid, 1 blank."""
    lines = story()
    bad = [
        "this is not json\n",
        '{"topic": "exchange.trades"\n',
        json.dumps({"topic": "exchange.unknown", "value": {}}) + "\n",
        line(trade("-5", event_id="t-neg")),  # negative amount
        line(trade(event_id="t-key"), key="bitflyer"),  # key names another exchange
        line(trade("-7", currency="XYZ", event_id="t-xyz")),  # negative, in an unpriced currency
        json.dumps({"topic": "exchange.trades", "value": {}, "partition": 3}) + "\n",
        "\n",
    ]
    return [lines[0], *bad[:4], *lines[1:4], *bad[4:], *lines[4:]]


def test_bad_lines_are_counted_invalid_and_the_replay_goes_on() -> None:
    output, result = run(with_bad_lines())
    assert output == run(story())[0]  # the good lines tell the same story
    invalid = sum(n for (_, outcome), n in result.outcomes.items() if outcome == "invalid")
    assert invalid == 7
    assert result.outcomes[(Topic.TRADES.value, "invalid")] == 3
    assert result.outcomes[(Topic.TRADES.value, "applied")] == 1
    assert len(result.problems) == 7
    assert any("notional" in problem and "negative" in problem for problem in result.problems)
    assert any(problem.startswith("line 2: value: not JSON") for problem in result.problems)


@pytest.mark.parametrize("ahead", [2, 3, AHEAD])
def test_lines_decoded_ahead_give_the_same_replay(ahead: int) -> None:
    """Decoding a file's lines ahead of the engine changes nothing a user sees: the same
    CloudEvents, the same counts, the problems in the order of their lines."""
    lines = with_bad_lines()
    # between lines refused as they are decoded, one the engine refuses as it takes it
    lines.insert(3, line(price("150", currency="USD", event_id="p-usd"), key="BTC"))
    output, result = run(lines, ahead=ahead)
    one_by_one = run(lines)
    assert output == one_by_one[0]
    assert result.outcomes == one_by_one[1].outcomes
    assert result.problems == one_by_one[1].problems
    numbers = [int(problem.split(":")[0].removeprefix("line ")) for problem in result.problems]
    assert numbers == sorted(numbers) and len(numbers) == 8
    assert "line 4: currency: prices must be in the reporting currency" in result.problems[2]


def test_every_line_is_accounted_for_under_one_outcome() -> None:
    lines = [*story(), story()[4], line(wallet("1", when=at(minutes=-5), event_id="w-old"))]
    _, result = run(lines)
    assert sum(result.outcomes.values()) == len(lines)
    assert result.outcomes[(Topic.TRADES.value, "duplicate")] == 1
    assert result.outcomes[(Topic.WALLET_BALANCES.value, "stale")] == 1


# -- the command -----------------------------------------------------------------------


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    path = tmp_path / "story.jsonl"
    path.write_text("".join(story()), encoding="utf-8")
    return path


def run_cli(*args: str, app_id: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RESERVE_MONITOR_")}
    if app_id is not None:
        environment["RESERVE_MONITOR_APP_ID"] = app_id
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def test_the_replay_command_writes_cloudevents_and_the_table(story_file: Path) -> None:
    done = run_cli("replay", str(story_file), app_id="cli-test")
    assert done.returncode == 0, done.stderr
    assert done.stdout == run(story(), app_id="cli-test")[0]
    for cloud_event in events_of(done.stdout):
        assert cloud_event["source"] == "reserve-monitor/cli-test"
    table = done.stderr
    assert "jp.liability_reserve" in table
    assert "jp.cold_storage" in table
    assert "OK" in table
    assert "amounts in JPY" in table


def test_a_live_pipe_gets_each_cloudevent_as_its_moment_is_judged() -> None:
    """``replay -`` behind a watcher: the first changes come out while the pipe is still
    open, not when the output's buffer fills or the input ends."""
    # as a user's shell runs it: Python buffers a pipe's output unless told otherwise
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RESERVE_MONITOR_") and k != "PYTHONUNBUFFERED"
    }
    lines = story()
    process = subprocess.Popen(
        [str(CLI), "replay", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        # the trade ten minutes on closes the first moment, which is then judged
        process.stdin.write("".join(lines[:5]))
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no CloudEvent before the input ended"
        first = json.loads(process.stdout.readline())
        assert first["type"] == "reserve.status.changed"
        assert process.poll() is None  # still reading its input
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        process.stdout.close()
    assert process.returncode == 0


def test_the_replay_command_reads_stdin(story_file: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RESERVE_MONITOR_")}
    done = subprocess.run(
        [str(CLI), "replay", "-"],
        input=story_file.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == run(story())[0]
