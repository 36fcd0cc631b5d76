"""Summa: the CSV of user balances its Merkle sum tree is built from (``--format summa``).

Source: github.com/summa-dev/summa-solvency, ``csv/entry_16.csv`` and the parser
``zk_prover/src/merkle_sum_tree/utils/csv_parser.rs``. A header names the
username column and one column per cryptocurrency and chain,
``balance_<CURRENCY>_<CHAIN>``; each row is one user::

    username,balance_ETH_ETH,balance_USDT_ETH
    dxGaEAii,11888,41163

Balances are non-negative integers (Summa parses them as big unsigned
integers); the file itself carries no decimals. They are read as quantities of
the currency unless ``decimals`` says they are in a smaller unit (``{"ETH": 18}``:
wei). The liability per asset is the sum over users and over chains
(``balance_USDT_ETH`` and ``balance_USDT_TRX`` both count for USDT: wallets
report an asset, whatever chain holds it), exact in ``Decimal``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from connectors.por.fields import asset_symbol, read_text, whole_number
from connectors.por.liabilities import Totals
from connectors.por.problems import Problems

USERNAME = "username"
HEADER_EXAMPLE = "username,balance_ETH_ETH,balance_USDT_ETH"


@dataclass(frozen=True, slots=True)
class BalanceColumn:
    name: str  # as the header spells it
    asset: str
    chain: str
    exponent: int  # balance / 10**exponent = quantity of the asset


def parse(data: bytes, decimals: Mapping[str, int] | None = None) -> Totals:
    """Per-asset sums of the users' balances; raises ``InvalidPorFile`` with every problem.

    ``decimals``: per ``CURRENCY`` or ``CURRENCY_CHAIN``, how many decimal places
    the file's integers carry (0, whole units, where not given).
    """
    text = read_text(data)
    problems = Problems()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: list[BalanceColumn] | None = None
    totals = Totals()
    users: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if columns is None:
                columns = _header(line, row, decimals or {}, problems)
                if columns is None:
                    raise problems.error()
                for column in columns:
                    totals.name(column.asset)
                continue
            _row(line, row, columns, users, totals, problems)
    except csv.Error as error:
        problems.add(reader.line_num, f"not CSV: {error}")
        raise problems.error() from None
    if columns is not None and not users and not problems:
        problems.add(0, "the file lists no users, only its header")
    problems.raise_any()
    return totals


def _header(
    line: int, row: list[str], decimals: Mapping[str, int], problems: Problems
) -> list[BalanceColumn] | None:
    if row[0].strip() != USERNAME:
        problems.add(
            line,
            f"missing header: the first line must name the columns, {HEADER_EXAMPLE}, "
            f"not {','.join(row)[:60]!r}",
            column=1,
        )
        return None
    columns: list[BalanceColumn] = []
    seen: set[str] = set()
    for index, name in enumerate(row[1:], start=2):
        parts = name.strip().split("_")
        if len(parts) != 3 or parts[0] != "balance" or not parts[1] or not parts[2]:
            problems.add(
                line,
                f"{name!r} is not a balance column: balance_<CURRENCY>_<CHAIN>, "
                "e.g. balance_ETH_ETH",
                column=index,
            )
            continue
        if name in seen:
            problems.add(line, f"the column {name} appears twice", column=index)
            continue
        seen.add(name)
        try:
            asset = asset_symbol(parts[1])
        except ValueError as error:
            problems.add(line, str(error), column=index, field=name)
            continue
        chain = parts[2]
        exponent = decimals.get(f"{asset}_{chain.upper()}", decimals.get(asset, 0))
        columns.append(BalanceColumn(name, asset, chain, exponent))
    if not columns and not problems:
        problems.add(line, f"the header names no balance columns: {HEADER_EXAMPLE}")
    return columns if not problems else None


def _row(
    line: int,
    row: list[str],
    columns: list[BalanceColumn],
    users: dict[str, int],
    totals: Totals,
    problems: Problems,
) -> None:
    if len(row) != len(columns) + 1:
        problems.add(line, f"{len(row)} fields where the header names {len(columns) + 1}", column=1)
        return
    username = row[0].strip()
    if not username:
        problems.add(line, "the username is empty", column=1, field=USERNAME)
    elif username in users:
        problems.add(
            line,
            f"{username!r} is listed twice (first on line {users[username]}); "
            "its balances would count twice",
            column=1,
            field=USERNAME,
        )
    else:
        users[username] = line
    for index, (column, cell) in enumerate(zip(columns, row[1:], strict=True), start=2):
        try:
            units = whole_number(cell)
        except ValueError as error:
            problems.add(line, str(error), column=index, field=column.name)
            continue
        totals.add(column.asset, Decimal(units).scaleb(-column.exponent))
