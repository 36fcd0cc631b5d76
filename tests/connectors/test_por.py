"""``reserve-monitor import por``: sample files of each format, bad files, and replay.

The samples in ``por_files/`` mirror the shapes the exchanges' own tools publish
(see docs/connectors/por.md); each test states the exact totals they must give.
Commands run through the real CLI entry point; the events go to JSON Lines and
through the real ``replay`` engine. The Kafka path is tested against a real
broker in tests/integration/test_por_kafka.py.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.por import binance, okx, summa
from connectors.por.problems import InvalidPorFile
from monitor.cli import main
from monitor.core.events import CustomerLiability, Topic, decode
from tests.cli import run_without_kafka

FILES = Path(__file__).parent / "por_files"
AS_OF = "2024-05-31T09:00:00+09:00"  # the snapshot time, given with an offset
AS_OF_UTC = "2024-05-31T00:00:00Z"

SAMPLES = {
    "binance_cex_assets.json": (
        "binance",
        {
            "BTC": Decimal("5466.83793725"),
            "ETH": Decimal("51000.27005402"),
            "USDT": Decimal("3008327.86819174"),
            "SHIB": Decimal("80717596410"),  # a two-digit asset: scaled by 10^2, not 10^8
        },
    ),
    "binance_dbtool.json": (
        "binance",
        {"BTC": Decimal("3188.30207394"), "ETH": Decimal("74.20028037"), "DOGE": Decimal(0)},
    ),
    "okx_liabilities_tree.txt": (
        "okx",
        {
            "BTC": Decimal("4.7345679"),
            "ETH": Decimal("13.00000001"),
            "USDT": Decimal("1362.92345678"),
        },
    ),
    "summa_balances.csv": ("summa", {"ETH": Decimal(172), "USDT": Decimal(220103)}),
}


def import_por(
    file: Path, format_: str, out: Path, *, exchange: str = "dmm", as_of: str = AS_OF
) -> int:
    return main(
        [
            "import",
            "por",
            str(file),
            "--format",
            format_,
            "--exchange",
            exchange,
            "--as-of",
            as_of,
            "--jsonl",
            str(out),
        ]
    )


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def amounts(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    return {line["value"]["asset"]: Decimal(line["value"]["amount"]) for line in lines}


# -- the samples --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_gives_its_exact_totals_as_ledger_events(name: str, tmp_path: Path) -> None:
    format_, expected = SAMPLES[name]
    out = tmp_path / "out.jsonl"
    assert import_por(FILES / name, format_, out) == 0
    lines = lines_of(out)
    assert amounts(lines) == expected
    assert [line["value"]["asset"] for line in lines] == list(expected)  # the file's order
    for line in lines:
        assert line["topic"] == "exchange.ledger"
        assert line["key"] == "dmm"
        value = line["value"]
        assert set(value) == {"type", "event_id", "exchange", "ts", "asset", "amount"}
        assert value["type"] == "customer_liability"
        assert value["ts"] == AS_OF_UTC
        # the monitor takes it as it is: the worker's own decoder, key checked
        event = decode(Topic.LEDGER, line["key"], json.dumps(value).encode())
        assert isinstance(event, CustomerLiability)
        assert event.amount == expected[value["asset"]]


def test_event_ids_are_deterministic_and_name_file_time_and_exchange(tmp_path: Path) -> None:
    sample = FILES / "summa_balances.csv"

    def ids(file: Path, exchange: str = "dmm", as_of: str = AS_OF) -> list[str]:
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.jsonl"
        assert import_por(file, "summa", out, exchange=exchange, as_of=as_of) == 0
        return [line["value"]["event_id"] for line in lines_of(out)]

    first = ids(sample)
    assert len(set(first)) == 2
    assert ids(sample) == first  # a re-import is a duplicate the monitor ignores
    assert ids(sample, as_of="2024-05-31T00:00:00Z") == first  # the same instant
    assert set(ids(sample, as_of="2024-06-30T00:00:00Z")).isdisjoint(first)
    assert set(ids(sample, exchange="other")).isdisjoint(first)
    changed = tmp_path / "changed.csv"
    changed.write_bytes(sample.read_bytes() + b"late.user,1,0,0\n")
    assert set(ids(changed)).isdisjoint(first)


def test_summa_sums_a_currency_over_its_chains_and_reads_decimals() -> None:
    data = (FILES / "summa_balances.csv").read_bytes()
    assert dict(summa.parse(data)) == {"ETH": Decimal(172), "USDT": Decimal(220103)}
    # balance_USDT_ETH at 10^-2, balance_USDT_TRX at 10^-6, ETH at 10^-1
    totals = dict(summa.parse(data, {"ETH": 1, "USDT": 2, "USDT_TRX": 6}))
    assert totals == {
        "ETH": Decimal("17.2"),
        "USDT": Decimal("1175.84") + Decimal("0.102519"),
    }


def test_the_command_takes_a_summa_files_decimals(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    command = ["import", "por", str(FILES / "summa_balances.csv"), "--format", "summa"]
    command += ["--exchange", "dmm", "--as-of", AS_OF, "--jsonl", str(out)]
    assert main([*command, "--decimals", "ETH=1", "--decimals", "USDT=2"]) == 0
    assert amounts(lines_of(out)) == {"ETH": Decimal("17.2"), "USDT": Decimal("2201.03")}
    refused = tmp_path / "refused.jsonl"
    assert main([*command[:-1], str(refused), "--decimals", "ETH"]) == 1
    assert not refused.exists()


def test_okx_reads_the_tree_as_published_including_its_padding_leaf() -> None:
    # the last two leaves share a hash: OKX pads a level with a zero-balance copy
    text = (FILES / "okx_liabilities_tree.txt").read_text().splitlines()
    assert text[-1].split(",")[0] == text[-2].split(",")[0]
    totals = dict(okx.parse((FILES / "okx_liabilities_tree.txt").read_bytes()))
    assert totals["USDT"] == Decimal("1362.92345678")


def test_binance_scale_may_be_given_by_the_file() -> None:
    data = b"""{"Pricing": {"default_balance_scale": 1000000, "two_digit_assets": ["btc"],
      "two_digit_balance_scale": "10"},
     "CexAssetsInfo": [{"Symbol": "btc", "TotalEquity": 1234, "TotalDebt": 4},
                       {"Symbol": "ETH", "TotalEquity": 1234, "TotalDebt": 4}]}"""
    assert dict(binance.parse(data)) == {"BTC": Decimal("123"), "ETH": Decimal("0.00123")}


# -- bad files: every problem with its place, nothing written -------------------

BAD_FILES = {
    "summa bad rows": (
        "summa",
        "username,balance_ETH_ETH,balance_USDT_ETH\n"
        "alice,5,abc\n"
        "bob,-3,2\n"
        "\n"
        "carol,1.5,\n"
        "alice,1,1\n"
        "dave,1,1,9\n",
        [
            ":2:3: balance_USDT_ETH: 'abc' is not a whole number",
            ":3:2: balance_ETH_ETH: -3 is negative",
            ":5:2: balance_ETH_ETH: '1.5' is not a whole number",
            ":5:3: balance_USDT_ETH: the amount is missing",
            ":6:1: username: 'alice' is listed twice (first on line 2)",
            ":7:1: 4 fields where the header names 3",
        ],
    ),
    "summa no header": (
        "summa",
        "alice,5,1\nbob,1,2\n",
        [":1:1: missing header: the first line must name the columns"],
    ),
    "summa bad header": (
        "summa",
        "username,balance_ETH,balance_B$D_ETH,balance_ETH_ETH,balance_ETH_ETH\nalice,1,2,3,4\n",
        [
            ":1:2: 'balance_ETH' is not a balance column",
            ":1:3: balance_B$D_ETH: 'B$D' is not an asset symbol",
            ":1:5: the column balance_ETH_ETH appears twice",
        ],
    ),
    "summa header only": ("summa", "username,balance_ETH_ETH\n", [": the file lists no users"]),
    "binance bad entries": (
        "binance",
        '{"CexAssetsInfo": [\n'
        ' {"Symbol": "BTC", "TotalEquity": 5, "TotalDebt": 7},\n'
        ' {"Symbol": "B TC", "TotalEquity": -1, "TotalDebt": 1.5},\n'
        ' {"TotalEquity": "12"},\n'
        ' {"Symbol": "btc", "TotalEquity": 1, "TotalDebt": 0}\n'
        '], "Pricing": {"default_balance_scale": "1e8x", "two_digit_balance_scale": 300}}\n',
        [
            ":2:2: BTC: TotalDebt 7 exceeds TotalEquity 5",
            ":3:13: Symbol: 'B TC' is not an asset symbol",
            ":3:36: TotalEquity: -1 is negative",
            ":3:53: TotalDebt: 1.5 is not a scaled integer",
            ":4:2: Symbol: missing",
            ":4:2: TotalDebt: missing",
            ":4:18: TotalEquity: must be a scaled integer",
            ":5:13: Symbol: BTC is listed twice (first on line 2)",
            ":6:41: Pricing.default_balance_scale: '1e8x' is not a balance scale",
            ":6:76: Pricing.two_digit_balance_scale: 300 is not a balance scale",
        ],
    ),
    "binance not json": (
        "binance",
        '{"CexAssetsInfo": [\n {"Symbol": "BTC", "TotalEquity": 5,,}]}',
        [":2:37: not JSON: expected a key in double quotes"],
    ),
    "binance no assets list": (
        "binance",
        '{"ProofTable": "config/proof.csv"}',
        [':1:1: no "CexAssetsInfo"'],
    ),
    "binance empty list": ("binance", "[]", [":1:1: the CEX assets list is empty"]),
    "okx bad nodes": (
        "okx",
        'zz,1,{"BTC":"1"}\n'
        + "a" * 64
        + ',x,{"BTC":"-1"}\n'
        + "b" * 64
        + ',1,{"BTC":"abc","E TH":"1"}\n'
        + "c" * 64
        + ",1,not json\n"
        + "only,two\n",
        [
            ":1:1: hash: 'zz' is not a node hash",
            ":2:66: level: 'x' is not a whole number",
            ":2:68: balances.BTC: -1 is negative",
            ":3:68: balances.BTC: 'abc' is not a decimal number",
            ":3:68: balances: 'E TH' is not an asset symbol",
            ":4:68: balances: not JSON",
            ":5: expected three fields",
        ],
    ),
}


def _okx_without(*drop: int) -> str:
    lines = (FILES / "okx_liabilities_tree.txt").read_text().splitlines()
    return "\n".join(line for number, line in enumerate(lines, 1) if number not in drop) + "\n"


BAD_FILES["okx leaf missing"] = (
    "okx",
    _okx_without(11),  # the leaf holding 0.00000001 BTC, 10 ETH and 0.5 USDT
    [
        ":8: balances.BTC: the leaves add up to 4.73456789 BTC but the root (line 1) "
        "states 4.7345679: the file is cut short or altered",
        ":8: balances.ETH: the leaves add up to 3.00000001 ETH",
        ":8: balances.USDT: the leaves add up to 1362.42345678 USDT",
    ],
)
BAD_FILES["okx inner node missing"] = (
    "okx",
    _okx_without(3),
    [
        ":2: balances.BTC: the nodes of level 3 add up to 1.7345679 BTC",
        ":2: balances.ETH: the nodes of level 3 add up to 12.25000001 ETH",
        ":2: balances.USDT: the nodes of level 3 add up to 1250.62345678 USDT",
    ],
)
BAD_FILES["okx root missing"] = (
    "okx",
    _okx_without(1),
    [":1: level: 2 nodes at the top level 3 (lines 1, 2); a Merkle tree has one root"],
)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_lists_every_problem_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    format_, content, expected = BAD_FILES[case]
    file = tmp_path / "liabilities.in"
    file.write_text(content)
    out = tmp_path / "out.jsonl"
    assert import_por(file, format_, out) == 1
    assert not out.exists()
    errors = capsys.readouterr().err.splitlines()
    *problems, summary = errors
    assert summary.endswith("nothing was published")
    assert len(problems) == len(expected), errors
    for line, wanted in zip(problems, expected, strict=True):
        assert line.startswith(str(file) + wanted), (line, wanted)


@pytest.mark.parametrize("format_", ["binance", "okx", "summa"])
@pytest.mark.parametrize("content", [b"", b" \n\n"])
def test_empty_file_is_refused(
    format_: str, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "empty"
    file.write_bytes(content)
    out = tmp_path / "out.jsonl"
    assert import_por(file, format_, out) == 1
    assert not out.exists()
    assert f"{file}: the file is empty" in capsys.readouterr().err


def test_not_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "latin1.csv"
    file.write_bytes("username,balance_ETH_ETH\nJosé,1\n".encode("latin-1"))
    assert import_por(file, "summa", tmp_path / "out.jsonl") == 1
    assert "not UTF-8 text (byte 28)" in capsys.readouterr().err


def test_parser_errors_are_values_not_output() -> None:
    with pytest.raises(InvalidPorFile) as caught:
        summa.parse(b"username,balance_ETH_ETH\nalice,-1\n")
    [problem] = caught.value.problems
    assert (problem.line, problem.column, problem.field) == (2, 2, "balance_ETH_ETH")


@pytest.mark.parametrize(
    ("as_of", "exchange", "message"),
    [
        ("2024-05-31T00:00:00", "dmm", "--as-of (the file's snapshot time): must be an RFC 3339"),
        ("2024-05-31", "dmm", "--as-of (the file's snapshot time):"),
        ("yesterday", "dmm", "--as-of (the file's snapshot time): 'yesterday'"),
        (AS_OF, "DMM Bitcoin", "--exchange 'DMM Bitcoin' is not an exchange id"),
    ],
)
def test_bad_options_are_refused_before_anything_is_read(
    as_of: str, exchange: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    code = import_por(FILES / "summa_balances.csv", "summa", out, exchange=exchange, as_of=as_of)
    assert code == 1
    assert not out.exists()
    assert message in capsys.readouterr().err


def test_wrong_format_for_the_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert import_por(FILES / "summa_balances.csv", "okx", out) == 1
    assert import_por(FILES / "okx_liabilities_tree.txt", "binance", out) == 1
    assert import_por(FILES / "binance_cex_assets.json", "summa", out) == 1
    assert not out.exists()


def test_unreachable_kafka_fails_clearly_and_publishes_nothing() -> None:
    command = ["import", "por", str(FILES / "summa_balances.csv"), "--format", "summa"]
    _, done = run_without_kafka(*command, "--exchange", "dmm", "--as-of", AS_OF)
    assert done.returncode == 1
    assert "import por: cannot publish to Kafka: KafkaConnectionError" in done.stderr
    assert "nothing was published" in done.stderr
    assert done.stdout == ""


# -- the imported amounts decide jp.segregation in replay ---------------------------

POLICY = """\
reporting_currency: JPY
packs:
  jp:
    # judge a breach at once: this test has one moment, not five minutes of them
    segregation: {breach_for: 0s}
exchanges:
  default: {packs: [jp]}
"""


def _chain_and_prices() -> str:
    """Customer wallets holding 200 ETH and 230,000 USDT, priced at the snapshot time."""
    records = [
        ("market.prices", "ETH", {"event_id": "p-eth", "asset": "ETH", "price": "500000"}),
        ("market.prices", "USDT", {"event_id": "p-usdt", "asset": "USDT", "price": "150"}),
    ]
    lines = [
        {"topic": topic, "key": key, "value": {**value, "ts": AS_OF_UTC, "currency": "JPY"}}
        for topic, key, value in records
    ]
    for asset, balance in (("ETH", "200"), ("USDT", "230000")):
        value = {
            "event_id": f"w-{asset}",
            "exchange": "dmm",
            "ts": AS_OF_UTC,
            "wallet": f"{asset.lower()}-cold-1",
            "asset": asset,
            "balance": balance,
            "custody": "cold",
            "holder": "customer",
        }
        lines.append({"topic": "exchange.wallet-balances", "key": "dmm", "value": value})
    return "".join(json.dumps(line) + "\n" for line in lines)


def _segregation(
    liabilities: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    out = tmp_path / f"{liabilities.stem}.jsonl"
    assert import_por(liabilities, "summa", out) == 0
    replay_input = tmp_path / f"{liabilities.stem}-replay.jsonl"
    replay_input.write_text(_chain_and_prices() + out.read_text())
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    capsys.readouterr()
    assert main(["replay", str(replay_input), "--policy", str(policy)]) == 0
    changes = [json.loads(line)["data"] for line in capsys.readouterr().out.splitlines()]
    [segregation] = [data for data in changes if data["rule"] == "jp.segregation"]
    assert isinstance(segregation, dict)
    return segregation


def test_imported_liabilities_decide_segregation_in_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the sample owes 172 ETH and 220,103 USDT: the wallets cover both
    covered = _segregation(FILES / "summa_balances.csv", tmp_path, capsys)
    assert covered["status"] == "ok"
    assert Decimal(covered["ratio"]) == Decimal("1.044965")  # 230000 / 220103, rounded
    # the same file with one user owing 100 ETH more: 272 ETH owed, 200 held
    more = tmp_path / "more_owed.csv"
    more.write_text(
        (FILES / "summa_balances.csv").read_text().replace("ryo.sato,150,", "ryo.sato,250,")
    )
    short = _segregation(more, tmp_path, capsys)
    assert short["status"] == "breach"
    assert Decimal(short["ratio"]) == Decimal("0.735294")  # 200 / 272, rounded
    assert Decimal(short["shortfall"]) == Decimal(72 * 500000)  # 72 ETH at ¥500,000
    assert "ETH" in short["reason"]


def test_a_monthly_file_outlives_the_default_liability_age_unless_the_policy_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/connectors/por.md: a file dated a month back is too old for the 36h default."""
    out = tmp_path / "liabilities.jsonl"
    assert import_por(FILES / "summa_balances.csv", "summa", out) == 0
    ten_days_on = _chain_and_prices().replace(AS_OF_UTC, "2024-06-10T00:00:00Z")
    ten_days_on = ten_days_on.replace('"event_id": "', '"event_id": "later-')
    replay_input = tmp_path / "month.jsonl"
    replay_input.write_text(_chain_and_prices() + out.read_text() + ten_days_on)

    def segregation_changes(policy: str) -> list[tuple[str, str]]:
        file = tmp_path / "policy.yaml"
        file.write_text(policy)
        capsys.readouterr()
        assert main(["replay", str(replay_input), "--policy", str(file)]) == 0
        changes = [json.loads(line)["data"] for line in capsys.readouterr().out.splitlines()]
        return [
            (data["as_of"], data["status"]) for data in changes if data["rule"] == "jp.segregation"
        ]

    default = POLICY.replace("{breach_for: 0s}", "{}")
    assert segregation_changes(default) == [
        (AS_OF_UTC, "ok"),
        ("2024-06-10T00:00:00Z", "unknown"),  # the liabilities are 10 days old: over 36h
    ]
    monthly = POLICY.replace("{breach_for: 0s}", "{max_liability_age: 32d}")
    assert segregation_changes(monthly) == [(AS_OF_UTC, "ok")]


def test_a_file_wrong_throughout_shows_the_first_problems_and_counts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "wrong.csv"
    file.write_text("username,balance_ETH_ETH\n" + "".join(f"u{n},x\n" for n in range(250)))
    assert import_por(file, "summa", tmp_path / "out.jsonl") == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 200 + 2
    assert errors[0].startswith(f"{file}:2:2: balance_ETH_ETH: 'x' is not a whole number")
    assert errors[-2] == f"{file}: … and 50 more problems"
    assert errors[-1].startswith(f"{file}: not imported, 250 problems")
