"""What is wrong with a proof-of-reserves file, each problem at its place.

A file is imported whole or not at all, so a parser does not stop at the first
problem: it collects them all (:class:`Problems`) and raises
:class:`InvalidPorFile` at the end, and the operator fixes the file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: its line (1-based; 0 for the file as a whole), column, and why."""

    line: int
    message: str
    column: int | None = None  # 1-based character column, where one applies
    field: str | None = None  # the column's or key's name, where the format has one

    def describe(self, path: str) -> str:
        """``FILE:LINE[:COLUMN]: [field: ]message``, as compilers write it."""
        place = path if self.line == 0 else f"{path}:{self.line}"
        if self.line and self.column is not None:
            place += f":{self.column}"
        named = f"{self.field}: " if self.field else ""
        return f"{place}: {named}{self.message}"


class InvalidPorFile(Exception):
    """The file cannot be imported; ``problems`` says everything that is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s), first: {problems[0].message}")
        self.problems = problems


class Problems:
    """Collects the problems of one file while it is read."""

    def __init__(self) -> None:
        self._found: list[Problem] = []

    def add(
        self, line: int, message: str, *, column: int | None = None, field: str | None = None
    ) -> None:
        self._found.append(Problem(line, message, column, field))

    def __len__(self) -> int:
        return len(self._found)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._found)

    def error(self) -> InvalidPorFile:
        """The error that lists every problem found, by place in the file."""
        assert self._found, "no problem to report"
        return InvalidPorFile(sorted(self._found, key=lambda p: (p.line, p.column or 0)))

    def raise_any(self) -> None:
        """Raise :class:`InvalidPorFile` if any problem was found."""
        if self._found:
            raise self.error()

    @staticmethod
    def whole_file(message: str) -> InvalidPorFile:
        """The error for a file that cannot be read at all (empty, not UTF-8…)."""
        return InvalidPorFile([Problem(0, message)])
