"""``policy explain``: each rule's renderer over real engine output, and the command.

Every explanation here is rendered from the adequacy report document the engine
produces for events built with :mod:`tests.unit.builders`; the expected figures are
worked out by hand from those events.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.core.output.explain import explain_report, explain_rule
from monitor.core.output.report import adequacy_report
from monitor.core.policy import Policy, load_policy, parse_policy
from tests.unit.builders import (
    EXCHANGE,
    Doc,
    at,
    feed,
    fixed_overheads,
    instant_engine,
    insurance,
    liability,
    line,
    own_funds,
    price,
    reserve_fund,
    trade,
    wallet,
)

BILLION = 10**9
YEAR = timedelta(days=365)


def policy_of(*packs: str, **pack_params: Any) -> Policy:
    return parse_policy({"packs": pack_params, "exchanges": {"default": {"packs": list(packs)}}})


def report(policy: Policy, *docs: Doc) -> dict[str, Any]:
    e = instant_engine(policy)
    feed(e, *docs)
    return adequacy_report(e, EXCHANGE).to_document()


def explained(document: dict[str, Any], rule: str) -> str:
    """The lines of one rule's explanation, joined."""
    found = next(r for r in document["rules"] if r["rule"] == rule)
    return "\n".join(explain_rule(found, document["currency"]))


def customer_btc(cold: str, hot: str) -> list[Doc]:
    return [
        price("10000000"),
        wallet(cold, wallet_id="btc-cold-1"),
        wallet(hot, wallet_id="btc-hot-1", custody="hot"),
    ]


# -- jp.liability_reserve ---------------------------------------------------------------


def test_liability_reserve_in_breach_shows_every_step_of_the_arithmetic() -> None:
    document = report(
        load_policy(),
        trade(10 * BILLION),
        reserve_fund(BILLION),
        insurance(3 * BILLION, valid_from=at(days=200), valid_to=at(days=565)),
    )
    assert explained(document, "jp.liability_reserve") == "\n".join(
        [
            "jp.liability_reserve — BREACH",
            "  Floor 2,000,000,000 JPY = the largest of:",
            "    0.5% of 10,000,000,000 JPY traded over the trailing 30d = 50,000,000 JPY;",
            "    the fixed floor of 0 JPY;",
            "    the largest, 50,000,000 JPY, raised to the minimum floor of 2,000,000,000 JPY.",
            "  Available 1,000,000,000 JPY = reserve fund 1,000,000,000 JPY + insurance "
            "counted 0 JPY.",
            "    Insurance counts up to 50% of the floor = 1,000,000,000 JPY.",
            "    Insurance in force: none.",
            "    Not counted: tokio-2026, not in force (2024-12-17T13:00:00+00:00 to "
            "2025-12-17T13:00:00+00:00).",
            "  Ratio 1,000,000,000 JPY / 2,000,000,000 JPY = 50%, under the breach level of "
            "100% → BREACH.",
            "  To comply: add 1,000,000,000 JPY to the reserve fund.",
            "  Risk ahead: no insurance policy ends within 30d.",
        ]
    )


def test_liability_reserve_with_a_hot_value_component_a_capped_insurance_and_a_warning() -> None:
    policy = policy_of("jp", jp={"liability_reserve": {"hot_customer_value_share": "0.5"}})
    document = report(
        policy,
        *customer_btc("100", "500"),  # 5 bn in hot wallets: half is a 2.5 bn floor
        reserve_fund(1_500_000_000),
        insurance(2 * BILLION, valid_from=at(days=-1), valid_to=at(days=365)),
    )
    text = explained(document, "jp.liability_reserve")
    assert "jp.liability_reserve — WARNING" in text
    assert "50% of 5,000,000,000 JPY of customer crypto in hot wallets = 2,500,000,000 JPY;" in text
    assert "the largest, 2,500,000,000 JPY, within the range" in text
    # 2 bn of insurance in force counts up to half the 2.5 bn floor
    assert "Insurance in force: tokio-2026 2,000,000,000 JPY." in text
    assert "Insurance counts up to 50% of the floor = 1,250,000,000 JPY." in text
    assert "= reserve fund 1,500,000,000 JPY + insurance counted 1,250,000,000 JPY" in text
    assert (
        "= 110%, at or above the breach level of 100% but under the early-warning level of "
        "120% → WARNING." in text
    )
    # 120% of 2.5 bn = 3 bn, against 2.75 bn
    assert "To restore the early-warning margin: add 250,000,000 JPY to the reserve fund." in text


def test_a_status_held_by_hysteresis_says_so() -> None:
    e = instant_engine(load_policy())
    feed(e, reserve_fund(1_900_000_000), reserve_fund(2_030_000_000, when=at(minutes=1)))
    document = adequacy_report(e, EXCHANGE).to_document()
    text = explained(document, "jp.liability_reserve")
    assert (
        "= 101.5%, at or above the breach level of 100% but under the early-warning level of "
        "120%" in text
    )
    feed(e, reserve_fund(2_410_000_000, when=at(minutes=2)))  # 120.5%: not clear of 120% + 2
    text = explained(adequacy_report(e, EXCHANGE).to_document(), "jp.liability_reserve")
    assert (
        "= 120.5%, at or above the early-warning level of 120%; it stays WARNING until the "
        "ratio clears the level by the hysteresis margin of 2% → WARNING." in text
    )


def test_the_risk_ahead_is_explained_and_named_as_the_cause_of_the_warning() -> None:
    document = report(
        load_policy(),
        reserve_fund(1_500_000_000),
        insurance(BILLION, valid_from=at(days=-300), valid_to=at(days=10)),
    )
    text = explained(document, "jp.liability_reserve")
    assert (
        "= 125%, at or above the early-warning level of 120%; insurance ending ahead makes it "
        "a warning (see Risk ahead) → WARNING." in text
    )
    assert "Risk ahead: insurance ending within 30d: tokio-2026 at 2024-06-10T13:00:00Z." in text
    assert (
        "When tokio-2026 ends at 2024-06-10T13:00:00Z, insurance counted falls to 0 JPY, "
        "leaving 1,500,000,000 JPY against 2,000,000,000 JPY = 75% (breach level 100%)." in text
    )
    assert (
        "That would be a breach: renew the insurance, or add 500,000,000 JPY, before "
        "2024-06-10T13:00:00Z." in text
    )


# -- cold storage, guarantee, segregation ------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "packs", "minimum", "action"),
    [
        ("jp.cold_storage", "jp", "95%", "To comply: move 10,000,000 JPY"),
        ("hk.cold_storage", "hk", "98%", "To comply: move 40,000,000 JPY"),
    ],
)
def test_cold_storage_shares_and_what_to_move(
    rule: str, packs: str, minimum: str, action: str
) -> None:
    document = report(policy_of(packs), *customer_btc("94", "6"))  # 940 m cold of 1 bn
    text = explained(document, rule)
    assert f"{rule} — BREACH" in text
    assert "Customer crypto 1,000,000,000 JPY = cold wallets 940,000,000 JPY + hot wallets " in text
    assert f"At least {minimum} must be cold" in text
    assert (
        f"Cold share 940,000,000 JPY / 1,000,000,000 JPY = 94%, under the breach level of {minimum}"
        in text
    )
    assert f"{action} of crypto from hot to cold wallets." in text


def test_cold_storage_warning_tells_the_move_that_restores_the_margin() -> None:
    document = report(policy_of("jp"), *customer_btc("955", "45"))  # 95.5%: under 96%
    text = explained(document, "jp.cold_storage")
    assert "→ WARNING." in text
    # 96% of 10 bn = 9.6 bn, against 9.55 bn cold
    assert "To restore the early-warning margin: move 50,000,000 JPY of crypto" in text


def test_hot_wallet_guarantee_names_the_short_asset_and_the_worst_ratio() -> None:
    document = report(
        policy_of("jp"),
        *customer_btc("97", "3"),
        wallet("2", wallet_id="btc-guarantee", holder="guarantee"),
    )
    text = explained(document, "jp.hot_wallet_guarantee")
    assert "jp.hot_wallet_guarantee — BREACH" in text
    assert "Customer crypto in hot wallets: worth 30,000,000 JPY." in text
    assert "Guarantee against it (each asset counted up to its need): 20,000,000 JPY." in text
    assert (
        "Short: BTC, guarantee 2 against customer crypto in hot wallets 3: 1 short "
        "(worth 10,000,000 JPY)." in text
    )
    assert "Worst asset BTC: guarantee 2 / customer crypto in hot wallets 3 = 66.67%" in text
    assert "(worth 10,000,000 JPY now)" in text


def test_a_guarantee_with_nothing_to_cover_says_so() -> None:
    document = report(policy_of("jp"), *customer_btc("100", "0"))
    text = explained(document, "jp.hot_wallet_guarantee")
    assert "jp.hot_wallet_guarantee — OK" in text
    assert "No customer crypto is in hot wallets; nothing needs a guarantee." in text


def test_segregation_in_warning() -> None:
    document = report(policy_of("jp"), *customer_btc("900", "100.1"), liability("1000"))
    text = explained(document, "jp.segregation")
    assert "jp.segregation — WARNING" in text
    assert "Owed to customers: worth 10,000,000,000 JPY." in text
    assert (
        "Worst asset BTC: customer holdings 1000.1 / owed to customers 1000 = 100.01%, at or "
        "above the breach level of 100% but under the early-warning level of 100.2%" in text
    )
    # 100.2% of 10 bn = 10.02 bn against 10 bn counted (holdings count up to what is owed)
    assert "To restore the early-warning margin: find where the crypto went" in text
    assert "(worth 20,000,000 JPY now)" in text


# -- hk, eu, ops ----------------------------------------------------------------------------


def test_compensation_cover_adds_its_components() -> None:
    document = report(
        policy_of("hk"),
        *customer_btc("95", "5"),  # required 50% of 950 m + 100% of 50 m = 525 m
        wallet("10", wallet_id="btc-guarantee", holder="guarantee"),
        reserve_fund(300_000_000),
        insurance(200_000_000, valid_from=at(days=-1), valid_to=at(days=365)),
        insurance(1, policy_id="lapsed", valid_from=at(days=-400), valid_to=at(days=-35)),
    )
    text = explained(document, "hk.compensation_cover")
    assert (
        "Required 525,000,000 JPY = 50% of 950,000,000 JPY of customer crypto in cold wallets "
        "+ 100% of 50,000,000 JPY in hot wallets." in text
    )
    assert (
        "Available 600,000,000 JPY = reserve fund 300,000,000 JPY + insurance 200,000,000 JPY "
        "+ guarantee crypto in cold wallets 100,000,000 JPY." in text
    )
    assert "Not counted: lapsed, not in force" in text
    assert "= 114.29%" in text and "→ WARNING." in text
    # 120% of 525 m = 630 m against 600 m
    assert "To restore the early-warning margin: add 30,000,000 JPY of cover" in text
    assert "Risk ahead: no insurance policy ends within 30d." in text


def test_mica_own_funds_shows_the_binding_requirement_and_its_conversion() -> None:
    document = report(
        policy_of("eu"),
        price("160", asset="EUR"),
        fixed_overheads("2400000"),
        own_funds("500000"),
    )
    text = explained(document, "eu.mica_own_funds")
    assert "eu.mica_own_funds — BREACH" in text
    assert "the class 3 minimum of 150,000 EUR = 24,000,000 JPY;" in text
    assert (
        "25% of annual fixed overheads of 2,400,000 EUR = 600,000 EUR = 96,000,000 JPY "
        "(the larger)." in text
    )
    assert "Available 80,000,000 JPY = own funds 500,000 EUR = 80,000,000 JPY" in text
    assert "Not checked: 90 days' cancellation notice" in text
    assert "To comply: raise own funds by 16,000,000 JPY, or take out eligible insurance." in text
    assert "Risk ahead: no insurance policy ends within 90d." in text


def test_mica_with_insurance_switched_off_says_so() -> None:
    policy = policy_of("eu", eu={"mica_own_funds": {"count_insurance": False}})
    document = report(
        policy, price("160", asset="EUR"), fixed_overheads("100000"), own_funds("200000")
    )
    text = explained(document, "eu.mica_own_funds")
    assert "Insurance: not counted (count_insurance is off)." in text
    assert "Risk ahead" not in text
    assert "the class 3 minimum of 150,000 EUR = 24,000,000 JPY (the larger);" in text


def test_hot_wallet_drain_names_the_fall() -> None:
    document = report(
        policy_of("ops"),
        price("10000000"),
        wallet("10", wallet_id="btc-hot-1", custody="hot"),
        wallet("1", wallet_id="btc-hot-1", custody="hot", when=at(minutes=5)),
    )
    text = explained(document, "ops.hot_wallet_drain")
    assert "ops.hot_wallet_drain — BREACH" in text
    assert (
        "Hot-wallet value now 10,000,000 JPY; its peak within the last 1h 100,000,000 JPY: "
        "a fall of 90,000,000 JPY (90%)." in text
    )
    assert "Fell: btc-hot-1 BTC 10 → 1 at 2024-05-31T13:05:00+00:00 (worth 90,000,000 JPY)." in text
    assert "Breach on a fall of more than 20% of the peak within 1h" in text
    assert "= 10%, under the breach level of 80% → BREACH." in text
    assert "To act: check the outgoing transfers" in text


# -- unknown rules, unknown renderers, the whole report ----------------------------------


def test_an_unknown_rule_tells_what_is_missing() -> None:
    document = report(load_policy(), trade(BILLION))
    text = explained(document, "jp.liability_reserve")
    assert text.splitlines() == [
        "jp.liability_reserve — UNKNOWN",
        "  no reserve_fund figure has arrived for dmm yet",
        "  missing: reserve_fund",
        "  Nothing is judged until the input named above arrives (or is fresh again).",
    ]


def test_a_rule_without_a_renderer_and_without_thresholds_is_still_told() -> None:
    document = report(load_policy(), reserve_fund(3 * BILLION))
    rule = dict(next(r for r in document["rules"] if r["rule"] == "jp.liability_reserve"))
    rule["rule"] = "xx.future_rule"
    del rule["thresholds"]  # a worker from before thresholds were reported
    text = "\n".join(explain_rule(rule, "JPY"))
    assert "xx.future_rule — OK" in text
    assert "Required 2,000,000,000 JPY, available 3,000,000,000 JPY, shortfall 0 JPY." in text
    assert "Ratio = 150% → OK." in text
    assert "reserve_fund: 3000000000" in text


def test_the_report_explains_every_rule_in_order_under_a_header() -> None:
    document = report(load_policy(), trade(BILLION), reserve_fund(3 * BILLION))
    text = explain_report(document)
    lines = text.splitlines()
    assert lines[0] == (
        "Exchange dmm: adequacy as of 2024-05-31T13:00:00Z; amounts in JPY; overall UNKNOWN."
    )
    assert lines[1] == (
        "Inputs last reported: ledger 2024-05-31T13:00:00Z, trades 2024-05-31T13:00:00Z."
    )
    assert lines[2] == "Trading volume over the trailing 30d: 1,000,000,000 JPY."
    headings = [line.split(" — ")[0] for line in lines if " — " in line and line[0] != " "]
    assert headings == [r["rule"] for r in document["rules"]]


# -- the command ---------------------------------------------------------------------------


def story() -> list[str]:
    """An exchange in breach of its floor and one that is not, as replay input."""
    return [
        line(trade(10 * BILLION, event_id="t-1"), key="dmm"),
        line(reserve_fund(BILLION, event_id="f-1"), key="dmm"),
        line(reserve_fund(3 * BILLION, exchange="calm", event_id="f-2"), key="calm"),
    ]


def expected_text() -> str:
    e = instant_engine(load_policy())
    feed(e, *(json.loads(text)["value"] for text in story()))
    return explain_report(adequacy_report(e, "dmm").to_document())


def test_the_command_explains_replay_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(story()))
    assert main(["policy", "explain", "--exchange", "dmm", "--input", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == expected_text()
    assert "jp.liability_reserve — BREACH" in out
    assert "To comply: add 1,000,000,000 JPY to the reserve fund." in out


def test_the_command_reads_stdin_under_a_policy_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("exchanges:\n  default: {packs: [hk]}\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(story()) + "not json\n"))
    argv = ["policy", "explain", "--exchange", "calm", "--input", "-", "--policy", str(policy)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "hk.compensation_cover — UNKNOWN" in captured.out
    assert "jp.liability_reserve" not in captured.out
    assert "1 input lines were rejected; the first: line 4:" in captured.err


def test_an_exchange_the_input_does_not_know_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(story()))
    assert main(["policy", "explain", "--exchange", "nowhere", "--input", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "policy explain: exchange 'nowhere' does not appear in the replay input "
        "(exchanges in it: calm, dmm)\n"
    )
    assert main(["policy", "explain", "--exchange", "dmm", "--input", str(tmp_path / "x")]) == 1
    assert "cannot read" in capsys.readouterr().err


class _StatusServer(http.server.ThreadingHTTPServer):
    """A stand-in worker on loopback serving ``/status`` documents (a fake, not a mock)."""

    body = b""
    asked: list[str]


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    server: _StatusServer

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        found = url.path == "/status"
        body = self.server.body if found else b"{}"
        wanted = urllib.parse.parse_qs(url.query).get("exchange")
        if found and wanted:  # as the worker does: those exchanges' reports only
            page = json.loads(body)
            page["exchanges"] = [r for r in page["exchanges"] if r["exchange"] in wanted]
            body = json.dumps(page).encode()
        self.server.asked.append(self.path)
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[_StatusServer]:
    server = _StatusServer(("127.0.0.1", 0), _StatusHandler)
    server.asked = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_command_explains_a_workers_status_document(
    status_server: _StatusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    e = instant_engine(load_policy())
    feed(e, *(json.loads(text)["value"] for text in story()))
    documents = [adequacy_report(e, name).to_document() for name in sorted(e.exchanges)]
    status_server.body = json.dumps({"app_id": "x", "exchanges": documents}).encode()
    url = f"http://127.0.0.1:{status_server.server_address[1]}"
    assert main(["policy", "explain", "--exchange", "dmm", "--url", url + "/"]) == 0
    assert capsys.readouterr().out == expected_text()
    assert status_server.asked == ["/status?exchange=dmm"]  # the one report, not every one
    assert main(["policy", "explain", "--exchange", "elsewhere", "--url", url]) == 1
    assert "reports no exchange 'elsewhere' (it reports: calm, dmm)" in capsys.readouterr().err


def test_an_unreachable_worker_and_a_policy_for_a_worker_are_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # port 9 (discard) on loopback: nothing listens there
    assert main(["policy", "explain", "--exchange", "dmm", "--url", "http://127.0.0.1:9"]) == 1
    assert "policy explain: cannot read http://127.0.0.1:9/status" in capsys.readouterr().err
    argv = ["policy", "explain", "--exchange", "dmm", "--url", "http://x", "--policy", "p.yaml"]
    assert main(argv) == 1
    assert "--policy applies to --input" in capsys.readouterr().err


def test_replay_of_a_missing_file_names_it_in_one_line_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["replay", "missing.jsonl"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: cannot read missing.jsonl: No such file or directory"]
