"""The demo's formatting: alert lines, the adequacy table, the summary, metric counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from monitor.synthetic.demo import (
    Style,
    Tally,
    _worker_env,
    events_counted,
    format_alert,
    format_amount,
    format_ratio,
    format_summary,
    format_table,
    open_breaches,
    playback_offsets,
    split_phases,
)
from monitor.synthetic.scenarios import generate, phases

PLAIN = Style(colour=False, unicode=True)
ASCII = Style(colour=False, unicode=False)
COLOUR = Style(colour=True, unicode=True)

BREACH = {
    "exchange": "dmm",
    "rule": "jp.liability_reserve",
    "status": "breach",
    "previous_status": "ok",
    "ratio": "0.842657",
    "required": "8307053280",
    "available": "7000000000",
    "shortfall": "1307053280.4",
    "currency": "JPY",
    "as_of": "2024-05-31T13:27:02Z",
    "reason": "Reserve fund plus eligible insurance cover 0.842657 of the floor.",
    "evidence": {},
}


def test_amounts_are_grouped_and_rounded_to_the_currency() -> None:
    assert format_amount("1307053280.4", "JPY") == "1,307,053,280"
    assert format_amount("900000", "EUR") == "900,000.00"
    assert format_amount(12, "JPY") == "12"
    assert format_amount("-0.2", "JPY") == "0"
    assert format_amount(None) == "-"
    assert format_amount("NaN") == "-"
    assert format_amount("not a number") == "-"


def test_ratios_have_three_places() -> None:
    assert format_ratio("1.4") == "1.400"
    assert format_ratio("0.9653449") == "0.965"
    assert format_ratio(None) == "-"


def test_a_breach_shows_time_transition_shortfall_and_the_reason_indented() -> None:
    head, reason = format_alert(BREACH, PLAIN, width=200)
    assert head.startswith("13:27:02Z  dmm")
    assert "jp.liability_reserve" in head
    assert "✖ ok → breach" in head
    assert head.endswith("shortfall 1,307,053,280 JPY")
    assert reason == " " * 11 + BREACH["reason"]


def test_no_shortfall_is_shown_when_there_is_none() -> None:
    ok = {**BREACH, "status": "ok", "previous_status": "breach", "shortfall": "0"}
    (head, _reason) = format_alert(ok, PLAIN, width=200)
    assert "✔ breach → ok" in head
    assert "shortfall" not in head
    unknown = {**BREACH, "status": "unknown", "shortfall": None, "reason": ""}
    assert format_alert(unknown, ASCII, width=200) == [
        "13:27:02Z  dmm     jp.liability_reserve     ? ok -> unknown"
    ]


def test_long_reasons_wrap_under_the_indent() -> None:
    long = {**BREACH, "reason": "word " * 40}
    lines = format_alert(long, PLAIN, width=60)
    assert len(lines) > 2
    assert all(line.startswith(" " * 11) and len(line) <= 60 for line in lines[1:])


def test_colour_only_when_asked() -> None:
    assert "\033[" not in "".join(format_alert(BREACH, PLAIN))
    assert "\033[31m" in "".join(format_alert(BREACH, COLOUR))


STATUS = {
    "app_id": "demo",
    "exchanges": [
        {
            "exchange": "dmm",
            "as_of": "2024-05-31T14:30:00.250417Z",
            "currency": "JPY",
            "status": "breach",
            "rules": [
                {
                    "rule": "jp.liability_reserve",
                    "status": "ok",
                    "ratio": "1.4",
                    "required": "40000000000",
                    "available": "56000000000",
                    "shortfall": "0",
                },
                {
                    "rule": "jp.segregation",
                    "status": "breach",
                    "ratio": "0.9",
                    "required": "100",
                    "available": "90",
                    "shortfall": "10",
                },
                {"rule": "ops.hot_wallet_drain", "status": "unknown"},
            ],
        },
        {"exchange": "calm", "as_of": "2024-05-31T14:30:00Z", "currency": "JPY", "rules": []},
    ],
}


def test_the_table_aligns_its_columns() -> None:
    lines = format_table(STATUS, PLAIN)
    header, rule, *rows, note = lines
    assert header.split() == [
        "exchange",
        "rule",
        "status",
        "ratio",
        "required",
        "available",
        "shortfall",
    ]
    assert set(rule) == {"-"}
    assert rows[0].split() == [
        "dmm",
        "jp.liability_reserve",
        "✔",
        "ok",
        "1.400",
        "40,000,000,000",
        "56,000,000,000",
        "0",
    ]
    assert rows[2].split()[-4:] == ["-", "-", "-", "-"]
    # right-aligned numbers end in the same column
    assert len({len(row) for row in rows if not row.endswith("-")}) == 1
    assert note == "(amounts in JPY; as of 2024-05-31T14:30:00Z event time)"


def test_the_table_of_no_exchange() -> None:
    assert format_table({"exchanges": []}, PLAIN) == ["(the worker reports no exchange)"]


def test_coloured_table_keeps_its_text() -> None:
    plain = format_table(STATUS, PLAIN)
    coloured = format_table(STATUS, COLOUR)
    strip = [line.replace("\033[0m", "") for line in coloured]
    for code in ("1", "2", "31", "32", "35"):
        strip = [line.replace(f"\033[{code}m", "") for line in strip]
    assert strip == plain


def test_tally_counts_breaches_opened_and_closed() -> None:
    tally = Tally()
    for previous, status in [
        ("unknown", "ok"),
        ("ok", "breach"),
        ("breach", "ok"),
        ("ok", "warning"),
        ("warning", "breach"),
    ]:
        tally.add({"previous_status": previous, "status": status})
    assert (tally.alerts, tally.opened, tally.closed) == (5, 2, 1)
    assert format_summary(tally, open_breaches(STATUS), PLAIN) == (
        "5 alerts; 2 breaches opened, 1 closed; 1 still open: dmm/jp.segregation"
    )
    one = Tally(alerts=1, opened=1, closed=1)
    assert format_summary(one, [], PLAIN) == "1 alert; 1 breach opened, 1 closed; 0 still open"


def test_events_counted_sums_every_topic_and_outcome() -> None:
    text = "\n".join(
        [
            "# HELP reserve_monitor_events_total Input events by outcome",
            "# TYPE reserve_monitor_events_total counter",
            'reserve_monitor_events_total{outcome="applied",topic="exchange.trades"} 300.0',
            'reserve_monitor_events_total{outcome="duplicate",topic="exchange.trades"} 2.0',
            'reserve_monitor_events_created{outcome="applied",topic="exchange.trades"} 1.7e+09',
            'reserve_monitor_alerts_total{rule="jp.cold_storage",status="ok"} 2.0',
        ]
    )
    assert events_counted(text) == 302
    assert events_counted("") == 0


def test_split_phases_keeps_every_record_in_order() -> None:
    start = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
    records = generate("dmm-incident", start, 1, settle_minutes=10)
    scenario_phases = phases("dmm-incident", start, 1, settle_minutes=10)
    groups = split_phases(records, scenario_phases)
    assert [phase.number for phase, _ in groups] == [1, 2, 3, 4, 5, 6]
    assert [r for _, batch in groups for r in batch] == records
    for (phase, batch), (following, _) in pairwise(groups):
        assert all(phase.starts <= r.ts < following.starts for r in batch)
    assert groups[1][1][0].ts >= start + timedelta(seconds=60)


def test_playback_compresses_the_live_span_and_rushes_the_rest() -> None:
    start = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
    live = (start, start + timedelta(seconds=900))
    records = generate("dmm-incident", start, 1, settle_minutes=10)
    offsets = playback_offsets(records, start - timedelta(days=1), live, 10.0)
    assert offsets == sorted(offsets)
    history = [o for r, o in zip(records, offsets, strict=True) if r.ts < start]
    assert history and set(history) == {0.0}
    at = {r.ts: o for r, o in zip(records, offsets, strict=True)}
    assert at[start + timedelta(seconds=130)] == 13.0
    assert max(offsets) == 90.0  # the quiet hour goes at once, after the story
    # a later phase counts from its own start
    surge = [r for r in records if r.ts >= start + timedelta(seconds=60)]
    assert playback_offsets(surge, start + timedelta(seconds=60), live, 10.0)[0] == 0.0


def test_the_demo_worker_takes_none_of_the_shell_s_worker_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESERVE_MONITOR_POLICY", "/etc/reserve/production.yaml")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = _worker_env("127.0.0.1:9092", "demo.", "demo-app", 6100)
    assert "RESERVE_MONITOR_POLICY" not in env  # the built-in packs, as the story expects
    assert "KAFKA_SECURITY_PROTOCOL" not in env  # the demo's broker is a local plaintext one
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert env["RESERVE_MONITOR_TOPIC_PREFIX"] == "demo."
    assert env["PATH"] == "/usr/bin"
