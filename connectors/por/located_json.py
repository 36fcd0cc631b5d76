"""JSON that remembers where each value stands, so a refusal can name its line.

The standard library parses JSON but forgets positions. This reader walks
objects and arrays itself and lets ``json`` decode each scalar (strings,
numbers, ``true``…) at its offset, keeping the line and column of every value.
Numbers come back exact: integers as ``int``, fractions as ``Decimal``.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_BLANK = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class Located:
    """A JSON value and its place; objects hold ``dict[str, Located]``, arrays lists."""

    value: Any
    line: int
    column: int


class JsonSyntaxError(ValueError):
    """Not JSON; ``line`` and ``column`` say where it stops making sense."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)

    def place(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1] + 1

    def fail(self, message: str, pos: int) -> JsonSyntaxError:
        return JsonSyntaxError(message, *self.place(pos))

    def blank(self, pos: int) -> int:
        match = _BLANK.match(self.text, pos)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    def expect(self, pos: int, char: str, what: str) -> int:
        pos = self.blank(pos)
        if self.text[pos : pos + 1] != char:
            raise self.fail(f"not JSON: expected {what}", pos)
        return pos + 1

    def value(self, pos: int) -> tuple[Located, int]:
        pos = self.blank(pos)
        char = self.text[pos : pos + 1]
        if char == "{":
            return self.object(pos)
        if char == "[":
            return self.array(pos)
        try:
            scalar, end = self.decoder.raw_decode(self.text, pos)
        except json.JSONDecodeError as error:
            raise self.fail(f"not JSON: {error.msg}", error.pos) from None
        except ValueError as error:  # NaN, Infinity
            raise self.fail(f"not JSON: {error}", pos) from None
        return Located(scalar, *self.place(pos)), end

    def object(self, start: int) -> tuple[Located, int]:
        members: dict[str, Located] = {}
        pos = self.blank(start + 1)
        if self.text[pos : pos + 1] == "}":
            return Located(members, *self.place(start)), pos + 1
        while True:
            pos = self.blank(pos)
            if self.text[pos : pos + 1] != '"':
                raise self.fail("not JSON: expected a key in double quotes", pos)
            key, pos = self.value(pos)
            if key.value in members:
                raise self.fail(f"the key {key.value!r} appears twice in one object", pos)
            pos = self.expect(pos, ":", "':' after a key")
            members[key.value], pos = self.value(pos)
            pos = self.blank(pos)
            char = self.text[pos : pos + 1]
            if char == "}":
                return Located(members, *self.place(start)), pos + 1
            if char != ",":
                raise self.fail("not JSON: expected ',' or '}'", pos)
            pos += 1

    def array(self, start: int) -> tuple[Located, int]:
        items: list[Located] = []
        pos = self.blank(start + 1)
        if self.text[pos : pos + 1] == "]":
            return Located(items, *self.place(start)), pos + 1
        while True:
            item, pos = self.value(pos)
            items.append(item)
            pos = self.blank(pos)
            char = self.text[pos : pos + 1]
            if char == "]":
                return Located(items, *self.place(start)), pos + 1
            if char != ",":
                raise self.fail("not JSON: expected ',' or ']'", pos)
            pos += 1


def parse(text: str) -> Located:
    """The located JSON document ``text``; raises :class:`JsonSyntaxError`."""
    reader = _Reader(text)
    try:
        document, end = reader.value(0)
    except RecursionError:
        raise JsonSyntaxError("not JSON: nested too deeply", 1, 1) from None
    end = reader.blank(end)
    if end != len(text):
        raise reader.fail("not JSON: more after the document", end)
    return document
