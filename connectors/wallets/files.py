"""Reading registry files into entries that remember where each value is.

YAML is composed into nodes, whose marks give each value's line; CSV rows give
theirs. Nothing here judges a value: `registry` does, naming the place it gets
from here (``file:line: field path``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CSV_COLUMNS = ("exchange", "wallet", "chain", "asset", "token", "decimals", "custody", "holder")
CSV_OPTIONAL = ("first_height",)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a value is: the file, its line (1-based) and the field path."""

    file: str
    line: int
    path: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}"

    def at(self, path: str, line: int | None = None) -> Place:
        return Place(self.file, self.line if line is None else line, path)


@dataclass(frozen=True, slots=True)
class Problem:
    """One error (the registry is unusable) or warning (usable, but look at it)."""

    place: Place
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.place}: {'warning: ' if self.warning else ''}{self.message}"


@dataclass(frozen=True, slots=True)
class Value:
    """A value read from a file, with its place."""

    value: Any
    place: Place


@dataclass(slots=True)
class Entry:
    """A mapping read from a file (a chain, a wallet, a CSV row group), field by field."""

    place: Place
    fields: dict[str, Value] = field(default_factory=dict)


# --- reading YAML with places -------------------------------------------------------------


def _load_yaml_node(path: Path, problems: list[Problem]) -> tuple[yaml.Node | None, Any]:
    """The file's root node and a loader that constructs its scalars, or a problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(Place(str(path), 1, "file"), f"cannot read: {error}"))
        return None, None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 1
        problems.append(Problem(Place(str(path), line, "file"), f"not YAML: {error.problem}"))
        return None, None
    except yaml.YAMLError as error:
        problems.append(Problem(Place(str(path), 1, "file"), f"not YAML: {error}"))
        return None, None
    return node, loader


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node, loader: Any, place: Place, problems: list[Problem]) -> Any:
    """A node as the Python value PyYAML's safe loader makes of it; a problem if it cannot."""
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as error:
        problems.append(Problem(place, f"cannot read value: {error}"))
        return None


def _mapping(
    node: yaml.Node, loader: Any, place: Place, problems: list[Problem]
) -> Iterator[tuple[str, yaml.Node, Place]]:
    """The (key, value node, place) of a YAML mapping; a problem if it is not one."""
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(place, "must be a mapping (`key: value`)"))
        return
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node, loader, place, problems)
        child = place.at(f"{place.path}.{key}" if place.path else str(key), _line(key_node))
        if not isinstance(key, str):
            problems.append(Problem(child, "keys must be text"))
            continue
        if key in seen:
            problems.append(Problem(child, f"repeated key (first at line {seen[key]})"))
            continue
        seen[key] = child.line
        yield key, value_node, child


def _entry(node: yaml.Node, loader: Any, place: Place, problems: list[Problem]) -> Entry:
    entry = Entry(place.at(place.path, _line(node)))
    for key, value_node, child in _mapping(node, loader, entry.place, problems):
        if isinstance(value_node, yaml.MappingNode):
            problems.append(Problem(child, "must be a single value, not a mapping"))
            continue
        if isinstance(value_node, yaml.SequenceNode):
            # each item keeps its own line, so a bad address is found where it is
            items = [
                Value(
                    _scalar(item, loader, child, problems),
                    child.at(f"{child.path}[{index}]", _line(item)),
                )
                for index, item in enumerate(value_node.value)
            ]
            entry.fields[key] = Value(items, child)
            continue
        entry.fields[key] = Value(_scalar(value_node, loader, child, problems), child)
    return entry


def read_chains(
    path: Path, problems: list[Problem], part: str = "chains"
) -> list[tuple[str, Entry]]:
    """The ``chains`` of a YAML file that holds only them (the CSV case)."""
    node, loader = _load_yaml_node(path, problems)
    if node is None:
        if loader is not None:
            problems.append(Problem(Place(str(path), 1, part), "the file is empty"))
        return []
    chains: list[tuple[str, Entry]] = []
    for key, value_node, child in _mapping(node, loader, Place(str(path), 1, ""), problems):
        if key == part:
            chains = _chain_entries(value_node, loader, child, problems)
        else:
            problems.append(Problem(child, f"unknown key; this file holds only `{part}`"))
    if not chains and not any(p.place.file == str(path) for p in problems):
        problems.append(Problem(Place(str(path), 1, part), "no chains"))
    return chains


def _chain_entries(
    node: yaml.Node, loader: Any, place: Place, problems: list[Problem]
) -> list[tuple[str, Entry]]:
    return [
        (key, _entry(value_node, loader, child, problems))
        for key, value_node, child in _mapping(node, loader, place, problems)
    ]


def read_yaml(
    path: Path, problems: list[Problem], *, chains_given: bool
) -> tuple[list[tuple[str, Entry]], list[Entry]]:
    node, loader = _load_yaml_node(path, problems)
    if node is None:
        if loader is not None:
            problems.append(Problem(Place(str(path), 1, "wallets"), "the file is empty"))
        return [], []
    chains: list[tuple[str, Entry]] = []
    wallets: list[Entry] = []
    has = set()
    root = Place(str(path), 1, "")
    for key, value_node, child in _mapping(node, loader, root, problems):
        has.add(key)
        if key == "chains":
            if chains_given:
                problems.append(Problem(child, "chains given both here and with --chains"))
            chains = _chain_entries(value_node, loader, child, problems)
            if not chains and isinstance(value_node, yaml.MappingNode):
                problems.append(Problem(child, "no chains"))
        elif key == "wallets":
            if not isinstance(value_node, yaml.SequenceNode):
                problems.append(Problem(child, "must be a list of wallets"))
                continue
            for index, item in enumerate(value_node.value):
                wallets.append(
                    _entry(item, loader, child.at(f"wallets[{index}]", _line(item)), problems)
                )
        else:
            problems.append(Problem(child, "unknown key (expected `chains` and `wallets`)"))
    if isinstance(node, yaml.MappingNode):
        if "chains" not in has and not chains_given:
            problems.append(Problem(root.at("chains"), "required (or give --chains FILE)"))
        if "wallets" not in has:
            problems.append(Problem(root.at("wallets"), "required"))
    return chains, wallets


# --- reading CSV ----------------------------------------------------------------------------


def read_csv(path: Path, problems: list[Problem]) -> list[Entry]:
    """One entry per (exchange, wallet, asset), its rows' addresses gathered in order."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often write a BOM
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(Place(str(path), 1, "file"), f"cannot read: {error}"))
        return []
    reader = csv.reader(text.splitlines(keepends=True))
    header_row = next(reader, None)
    if header_row is None:
        problems.append(Problem(Place(str(path), 1, "header"), "the file is empty"))
        return []
    header = [name.strip() for name in header_row]
    required = (*CSV_COLUMNS, "address")
    missing = [name for name in required if name not in header]
    unknown = [name for name in header if name not in required and name not in CSV_OPTIONAL]
    repeated = sorted({name for name in header if header.count(name) > 1})
    for names, what in ((missing, "missing"), (unknown, "unknown"), (repeated, "repeated")):
        if names:
            problems.append(
                Problem(
                    Place(str(path), 1, "header"),
                    f"{what} column{'s' if len(names) > 1 else ''}: {', '.join(names)} "
                    f"(expected {','.join(required)}[,first_height])",
                )
            )
    if missing or unknown or repeated:
        return []
    groups: dict[tuple[str, str, str], Entry] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        place = Place(str(path), line, f"row {line}")
        if len(row) != len(header):
            problems.append(Problem(place, f"{len(row)} cells, the header has {len(header)}"))
            continue
        cells = {name: cell.strip() for name, cell in zip(header, row, strict=True)}
        values = {
            name: Value(_csv_value(name, cells[name]), place.at(name))
            for name in (*CSV_COLUMNS, *CSV_OPTIONAL)
            if cells.get(name, "") != ""
        }
        group_key = (cells["exchange"], cells["wallet"], cells["asset"])
        address = Value(cells["address"], place.at("address"))
        entry = groups.get(group_key)
        if entry is None:
            entry = groups[group_key] = Entry(place, dict(values))
            entry.fields["addresses"] = Value([], place.at("address"))
        else:
            for name in sorted(set(values) | set(entry.fields) - {"addresses"}):
                ours, theirs = values.get(name), entry.fields.get(name)
                if (ours.value if ours else None) != (theirs.value if theirs else None):
                    problems.append(
                        Problem(
                            place.at(name),
                            f"{cells['exchange']}/{cells['wallet']} ({cells['asset']}) has "
                            f"{_shown(theirs)} at line {entry.place.line}, here {_shown(ours)}",
                        )
                    )
        if address.value:
            entry.fields["addresses"].value.append(address)
        else:
            problems.append(Problem(address.place, "required"))
    return list(groups.values())


def _shown(value: Value | None) -> str:
    return "nothing" if value is None else repr(value.value)


def _csv_value(name: str, cell: str) -> Any:
    """Cells are text; the numeric columns become ints when they are ints."""
    if name in ("decimals", "first_height"):
        try:
            return int(cell)
        except ValueError:
            return cell
    return cell
