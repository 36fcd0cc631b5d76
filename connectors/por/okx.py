"""OKX: the full liabilities Merkle tree file (``--format okx``).

Source: github.com/okx/proof-of-reserves, ``example/full-liabilities-merkle-tree.txt``
and ``common/merkle.go``; OKX publishes the whole tree on its proof-of-reserves
download page, "Liabilities" tab (README, MerkleValidator, Merkle tree V2).
One node a line, comma-separated: the node's hash, its level in the tree (1 for
a leaf), and the balances it sums, as JSON with amounts in strings::

    9e98ebde32ef…6ab041,6,{"BTC":"0.00005","ETH":"0.1","USDT":"1.42045977"}
    …
    dc2cad785fd5…7cb8a3,1,{"BTC":"0","ETH":"0","USDT":"0.00018157"}

Leaves are user accounts (a user may have several), so the liability per asset
is the sum of the leaves, exact in ``Decimal``. The root, the one node of the
top level, states the same totals; a file whose leaves do not add up to its
root is cut short or altered, and is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.por.fields import asset_symbol, decimal_amount, read_text, whole_number
from connectors.por.liabilities import Totals
from connectors.por.problems import Problems

_NODE_HASH = re.compile(r"[0-9a-fA-F]{64}\Z")
LEAF_LEVEL = 1


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    level: int
    balances: dict[str, Decimal]


@dataclass
class Level:
    """What the nodes of one level add up to, and where the level starts in the file."""

    first_line: int
    sums: Totals = field(default_factory=Totals)
    nodes: list[int] = field(default_factory=list)  # lines, kept for the top level only

    def add(self, node: Node) -> None:
        for asset, amount in node.balances.items():
            self.sums.add(asset, amount)


def parse(data: bytes) -> Totals:
    """The sum of the leaves per asset; raises ``InvalidPorFile`` with every problem.

    One pass, keeping a running sum per level, not the nodes: a full tree of
    millions of accounts is read in the memory of a few dozen totals.
    """
    text = read_text(data)
    problems = Problems()
    levels: dict[int, Level] = {}
    top: Node | None = None  # the first node of the highest level so far
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        node = _node(number, line, problems)
        if node is None:
            continue
        level = levels.setdefault(node.level, Level(number))
        level.add(node)
        if top is None or node.level > top.level:
            top = node
        if node.level == top.level:
            level.nodes.append(number)
    if top is None and not problems:
        problems.add(0, "the file holds no tree nodes")
    problems.raise_any()
    assert top is not None
    _check_levels(levels, top, problems)
    problems.raise_any()
    return levels[LEAF_LEVEL].sums


def _node(number: int, line: str, problems: Problems) -> Node | None:
    parts = line.split(",", 2)
    if len(parts) != 3:
        problems.add(
            number,
            'expected three fields, hash,level,{"BTC":"…",…}: a node of OKX\'s liabilities '
            "Merkle tree",
        )
        return None
    node_hash, level_text, balances_text = parts
    before = len(problems)
    if not _NODE_HASH.match(node_hash.strip()):
        problems.add(
            number, f"{node_hash!r} is not a node hash (64 hex digits)", column=1, field="hash"
        )
    level_column = len(node_hash) + 2
    level = 0
    try:
        level = whole_number(level_text)
        if level < LEAF_LEVEL:
            raise ValueError("levels start at 1 (a leaf)")
    except ValueError as error:
        problems.add(number, str(error), column=level_column, field="level")
    balances = _balances(number, balances_text, level_column + len(level_text) + 1, problems)
    if len(problems) > before or balances is None:
        return None
    return Node(number, level, balances)


def _balances(number: int, text: str, column: int, problems: Problems) -> dict[str, Decimal] | None:
    try:
        document = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        problems.add(number, f"not JSON: {error.msg}", column=column + error.pos, field="balances")
        return None
    except ValueError as error:
        problems.add(number, f"not JSON: {error}", column=column, field="balances")
        return None
    if not isinstance(document, dict) or not document:
        problems.add(
            number,
            'expected a JSON object of balances per asset, {"BTC":"0.5",…}',
            column=column,
            field="balances",
        )
        return None
    balances: dict[str, Decimal] = {}
    for key, value in document.items():
        try:
            asset = asset_symbol(key)
        except ValueError as error:
            problems.add(number, str(error), column=column, field="balances")
            continue
        try:
            balances[asset] = _amount(value)
        except ValueError as error:
            problems.add(number, str(error), column=column, field=f"balances.{key}")
    return balances


def _amount(value: Any) -> Decimal:
    if isinstance(value, str):
        return decimal_amount(value)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f'{value!r} is not a decimal number (e.g. "0.00047828")')
    if value < 0:
        raise ValueError(f"{value} is negative; a customer balance cannot be")
    return Decimal(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _check_levels(levels: dict[int, Level], root: Node, problems: Problems) -> None:
    """One root, and every level adds up to it: nothing was cut out or changed.

    Each level of a sum tree partitions the same balances (padding nodes are
    zero), so the nodes of any level add up to the root's balances.
    """
    roots = levels[root.level].nodes
    if len(roots) != 1:
        lines = ", ".join(str(line) for line in roots[:5])
        problems.add(
            roots[0],
            f"{len(roots)} nodes at the top level {root.level} (lines {lines}); a Merkle "
            "tree has one root: the file is cut short or not one tree",
            field="level",
        )
        return
    for number in range(LEAF_LEVEL, root.level):
        level = levels.get(number)
        if level is None:
            problems.add(
                root.line, f"no node at level {number}: the file is cut short", field="level"
            )
            continue
        for asset in sorted(set(root.balances) | set(level.sums.amounts)):
            stated = root.balances.get(asset, Decimal(0))
            total = level.sums.amounts.get(asset, Decimal(0))
            if stated != total:
                what = "the leaves" if number == LEAF_LEVEL else f"the nodes of level {number}"
                problems.add(
                    level.first_line,
                    f"{what} add up to {total} {asset} but the root (line {root.line}) "
                    f"states {stated}: the file is cut short or altered",
                    field=f"balances.{asset}",
                )
