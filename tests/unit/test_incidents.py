"""The incident library (monitor/synthetic/incidents): files, replays, table and doc.

Every replay goes through the real engine under the built-in policy, as
``reserve-monitor replay`` does; nothing is mocked.
"""

from __future__ import annotations

import io
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.core.engine import Engine
from monitor.core.policy import load_policy
from monitor.replay import replay
from monitor.synthetic.incidents.__main__ import main
from monitor.synthetic.incidents.backtest import Backtest, backtest
from monitor.synthetic.incidents.library import (
    IncidentError,
    incident_files,
    load_incident,
    load_library,
    schema_problems,
)
from monitor.synthetic.incidents.table import (
    MODELS_BEGIN,
    MODELS_END,
    TABLE_BEGIN,
    TABLE_END,
    assumptions,
    offset,
    region,
    render,
)
from monitor.synthetic.incidents.timeline import jsonl, records

DOC = Path(__file__).resolve().parents[2] / "docs" / "incidents.md"
EXPECTED_INCIDENTS = {"mtgox", "coincheck", "zaif", "bitpoint", "liquid", "ftx", "dmm", "bybit"}


@pytest.fixture(scope="module")
def results() -> list[Backtest]:
    """Every incident replayed as written and under every variant (a few seconds)."""
    return [backtest(incident) for incident in load_library()]


def by_key(results: list[Backtest], key: str) -> Backtest:
    return next(r for r in results if r.incident.key == key)


# -- the files ------------------------------------------------------------------


def test_the_library_holds_the_eight_incidents_in_date_order() -> None:
    incidents = load_library()
    assert {i.key for i in incidents} == EXPECTED_INCIDENTS
    times = [i.loss_at.time for i in incidents]
    assert times == sorted(times)


@pytest.mark.parametrize("path", incident_files(), ids=lambda p: p.stem)
def test_every_figure_is_sourced_or_labelled_model(path: Path) -> None:
    document = yaml.safe_load(path.read_text("utf-8"))
    assert schema_problems(document) == []
    incident = load_incident(path)
    assert incident.figures, "a file with no figures checks nothing"
    for figure in incident.figures:
        labels = [label for label in (figure.source, figure.model) if label]
        assert len(labels) == 1, figure.path
    # the public record's own figures are never MODEL where the file says they are sourced
    assert incident.date.source
    assert incident.loss_quantity.source


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"volume_per_day": 5}, "volume_per_day: 5 is a figure without a source or MODEL"),
        ({"note": "12.5"}, "note: '12.5' is a figure without a source or MODEL"),
        ({"lead": "2h"}, "lead: '2h' is a figure without a source or MODEL"),
        ({"at": "2024-05-31T13:26:00Z"}, "at: '2024-05-31T13:26:00Z' is a figure"),
        ({"fund": {"value": "1"}}, "fund: a figure needs exactly one of source or MODEL"),
        (
            {"fund": {"value": "1", "source": "x", "MODEL": "y"}},
            "fund: a figure needs exactly one of source or MODEL",
        ),
        ({"fund": {"value": 1, "MODEL": "why"}}, 'fund.value: quote it, e.g. value: "1"'),
        ({"fund": {"value": "1", "MODEL": " "}}, "fund.MODEL: must be non-empty text"),
        ({"fund": {"value": "1", "MODEL": "one\ntwo"}}, "fund.MODEL: the reason must be one line"),
        ({"w": [{"balance": {"value": "1", "MODEL": "ok"}}, 7]}, "w[1]: 7 is a figure"),
        (yaml.safe_load("date: 2024-05-31"), "date: datetime.date(2024, 5, 31) is a figure"),
    ],
)
def test_the_schema_check_refuses_unlabelled_figures(document: Any, problem: str) -> None:
    problems = schema_problems(document)
    assert any(p.startswith(problem) for p in problems), problems


def test_prose_may_repeat_a_figure_in_words() -> None:
    assert schema_problems({"lost": "523 million XEM, ≈ ¥58 bn", "what": "4,000 BTC move"}) == []


# -- the replays ----------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(EXPECTED_INCIDENTS))
def test_each_incident_fires_exactly_the_rules_its_file_names(
    results: list[Backtest], key: str
) -> None:
    result = by_key(results, key)
    expected = {e.rule for e in result.incident.fires}
    quiet = {e.rule for e in result.incident.quiet}
    assert expected, "an incident must say which rules should fire"
    assert result.fired == expected
    assert not result.fired & quiet


def test_bybit_a_cold_wallet_theft_is_not_a_hot_wallet_drain(results: list[Backtest]) -> None:
    bybit = by_key(results, "bybit")
    assert bybit.incident.custody.value == "cold"
    assert "ops.hot_wallet_drain" not in bybit.fired
    assert {"jp.segregation", "jp.cold_storage"} <= bybit.fired


def test_a_hot_wallet_theft_fires_the_drain_at_once_and_segregation_after_its_hold(
    results: list[Backtest],
) -> None:
    dmm = {f.rule: f for f in by_key(results, "dmm").firings}
    assert offset(dmm["ops.hot_wallet_drain"].after_loss) == "+0m"
    # jp.segregation holds a new breach 5 min; the next heartbeat (10 min) publishes it
    assert offset(dmm["jp.segregation"].after_loss) == "+10m"
    # the shortfall is the value of the BTC taken, at the price of the day
    shortfall = dmm["jp.segregation"].shortfall
    assert shortfall == Decimal("4502.9") * Decimal(10_704_000)


def test_the_sensitivity_check_names_the_model_figures_a_firing_rests_on(
    results: list[Backtest],
) -> None:
    dmm = by_key(results, "dmm")
    assert dmm.depends is not None
    # the cold-to-hot transfer is a modelled event: without it cold storage never breaches
    assert "timeline[0] left out" in dmm.depends["jp.cold_storage"]
    assert dmm.depends["ops.hot_wallet_drain"] == ()
    # a segregation breach vanishes when customers are modelled owed half as much
    zaif = by_key(results, "zaif")
    assert zaif.depends is not None
    assert "liabilities.BTC x0.5" in zaif.depends["jp.segregation"]
    # BITPoint's cold share rests on the record (13% of customer crypto was taken from hot)
    bitpoint = by_key(results, "bitpoint")
    assert bitpoint.depends is not None
    assert bitpoint.depends["jp.cold_storage"] == ()


def test_the_reserve_column_is_the_floor_over_the_loss_capped_at_one(
    results: list[Backtest],
) -> None:
    ftx = by_key(results, "ftx")
    assert ftx.floor == Decimal(40_000_000_000)  # the pack's top: ¥1.47 tn a day of volume
    assert ftx.coverage == Decimal(40_000_000_000) / Decimal(1_176_000_000_000)
    for result in results:
        assert result.coverage is not None and 0 < result.coverage <= 1


@pytest.mark.parametrize("key", sorted(EXPECTED_INCIDENTS))
def test_every_generated_record_is_applied(key: str) -> None:
    incident = next(i for i in load_library() if i.key == key)
    lines = jsonl(records(incident))
    result = replay(lines, Engine(load_policy(None), journal=False), io.StringIO())
    outcomes = Counter({outcome: 0 for _, outcome in result.outcomes})
    for (_, outcome), count in result.outcomes.items():
        outcomes[outcome] += count
    assert outcomes == Counter({"applied": len(lines)})  # no stale, duplicate or invalid record
    assert result.problems == []


# -- the table and the doc ------------------------------------------------------


def test_the_doc_shows_the_table_and_assumptions_as_generated(results: list[Backtest]) -> None:
    text = DOC.read_text("utf-8")
    assert region(text, TABLE_BEGIN, TABLE_END) == render(results), (
        "docs/incidents.md is out of date: python -m monitor.synthetic.incidents "
        "--markdown docs/incidents.md"
    )
    assert region(text, MODELS_BEGIN, MODELS_END) == assumptions(r.incident for r in results)


def test_every_model_figure_is_in_the_assumptions_list(results: list[Backtest]) -> None:
    listed = assumptions(r.incident for r in results).splitlines()
    count = sum(len(r.incident.model_figures) for r in results)
    assert len(listed) == count
    assert all(": " in line and line.startswith("- ") for line in listed)


def test_offsets_read_as_time_from_the_loss() -> None:
    from datetime import timedelta

    assert offset(timedelta(0)) == "+0m"
    assert offset(timedelta(minutes=-110)) == "-1h 50m"
    assert offset(timedelta(days=1, hours=2)) == "+1d 2h"


# -- the command ----------------------------------------------------------------

_TINY = """
name: Tiny
exchange: tiny
date: {value: "2024-01-01", source: "test"}
lost: "a test loss"
loss:
  asset: BTC
  quantity: {value: "QUANTITY", source: "test"}
  value_jpy: {value: "1000000000", source: "test"}
  custody: {value: hot, source: "test"}
  made_whole: {value: "not at all", source: "test"}
  at: {value: "2024-01-01T12:00:00Z", source: "test"}
replay:
  lead: {value: "30m", MODEL: "short"}
  tail: {value: "30m", MODEL: "short"}
  heartbeat: {value: "10m", MODEL: "fresh"}
prices:
  BTC: {value: "10000000", MODEL: "round"}
volume_per_day: {value: "1000000000", MODEL: "small"}
reserve_fund: {value: "3000000000", MODEL: "over the floor"}
wallets:
  - {wallet: btc-cold-1, asset: BTC, custody: cold, holder: customer,
     balance: {value: "9700", MODEL: "97% cold"}}
  - {wallet: btc-hot-1, asset: BTC, custody: hot, holder: customer,
     balance: {value: "300", MODEL: "3% hot"}}
  - {wallet: btc-guarantee-1, asset: BTC, custody: cold, holder: guarantee,
     balance: {value: "315", MODEL: "5% over"}}
liabilities:
  BTC: {value: "9990", MODEL: "a 0.1% buffer"}
timeline:
  - at: loss
    what: "some BTC leave the hot wallet"
    moves:
      - {wallet: btc-hot-1, by: {value: "-QUANTITY", source: "test"}}
expect:
  fire:
    - {rule: ops.hot_wallet_drain, why: "test"}
"""


def _tiny(tmp_path: Path, quantity: str) -> Path:
    directory = tmp_path / quantity
    directory.mkdir()
    (directory / "tiny.yaml").write_text(_TINY.replace("QUANTITY", quantity), "utf-8")
    return directory


def test_the_command_exits_non_zero_when_an_incident_fires_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 BTC of a 300 BTC hot float, inside the segregation buffer: nothing fires
    assert main(["--dir", str(_tiny(tmp_path, "1")), "--no-sensitivity"]) == 1
    out, err = capsys.readouterr()
    assert "| Tiny, 2024-01-01" in out and "| none " in out
    assert "Tiny: no rule fired" in err
    # the same file with the whole hot float taken fires, and exits 0
    assert main(["--dir", str(_tiny(tmp_path, "300")), "--no-sensitivity"]) == 0
    out, _ = capsys.readouterr()
    assert "ops.hot_wallet_drain" in out and "jp.segregation" in out


def test_the_command_names_the_place_of_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _tiny(tmp_path, "1")
    path = directory / "tiny.yaml"
    text = path.read_text("utf-8").replace("wallet: btc-hot-1, by", "wallet: btc-warm-9, by")
    path.write_text(text.replace("ops.hot_wallet_drain", "ops.no_such_rule"), "utf-8")
    assert main(["--dir", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "timeline[0]: no wallet 'btc-warm-9'" in err
    assert "expect: no rule 'ops.no_such_rule'" in err
    with pytest.raises(IncidentError):
        load_incident(path)
