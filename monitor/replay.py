"""``reserve-monitor replay``: the engine driven from JSON Lines, no Kafka.

Each line is one Kafka record: ``{"topic": ..., "value": {...}, "key": ...,
"timestamp": ...}`` (key and timestamp optional). Every status change is
written to ``out`` as the CloudEvent the worker would publish; the final
adequacy table goes to ``err``. Each exchange is judged at its own moments
(CONTRACT section 8), so the same input always gives the same output, and an
exchange's changes do not depend on the other exchanges' lines.
"""

from __future__ import annotations

import heapq
import itertools
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Protocol, TextIO, cast

import msgspec

from monitor.core.engine import Engine, Outcome, StatusChange, Step
from monitor.core.errors import InvalidEvent
from monitor.core.events import Event, decode
from monitor.core.events.lines import RecordLine, parse_line, whole_line
from monitor.core.output.alerts import cloud_event
from monitor.core.output.report import adequacy_report, adequacy_table
from monitor.core.output.signing import Signer
from monitor.core.policy import Policy
from monitor.heap import HeapKeeper
from monitor.progress import Progress

DEFAULT_APP_ID = "reserve-monitor"
# lines of a file are parsed and decoded this many at a time, then taken by the engine:
# each step's code and data stay warm through a run of lines (measured on the steady
# scenario: 47 -> 33.5 µs an event). Stdin is taken line by line, as a live pipe
# (``watch evm --jsonl -``) writes it, so each line is judged as soon as it comes.
AHEAD = 100


@dataclass
class ReplayResult:
    """What a replay counted: outcomes per topic, and the problems with the lines."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    changes: int = 0


# a msgspec struct: made once a line, in C, at a third of a dataclass's cost
class Line(msgspec.Struct, gc=False):
    """One line of input: the event its record carries, or why it carries none."""

    number: int
    topic: str
    timestamp: datetime | None  # the record's Kafka timestamp, when the line gives one
    event: Event | None
    problem: str | None = None


def read_lines(lines: Iterable[str]) -> Iterator[Line]:
    """The non-blank lines of one input, decoded, numbered from 1."""
    for number, text in enumerate(lines, start=1):
        whole = whole_line(text)
        if whole is not None:
            yield Line(number, whole.topic, whole.timestamp, whole.event)  # a StrEnum topic
        elif text.strip():
            try:
                record = parse_line(text)
            except InvalidEvent as error:
                yield Line(number, "?", None, None, f"line {number}: {error}")
                continue
            yield record_line(number, record)


def record_line(number: int, record: RecordLine) -> Line:
    """The line numbered ``number`` that carries ``record``, its value decoded."""
    try:
        event = decode(record.topic, record.key, record.value)
    except InvalidEvent as error:
        return Line(number, record.topic, record.timestamp, None, f"line {number}: {error}")
    return Line(number, record.topic, record.timestamp, event)


def merged(inputs: Sequence[Iterable[str]], names: list[str] | None = None) -> Iterator[Line]:
    """Several inputs merged by their lines' record timestamps (CONTRACT section 8).

    A line without a timestamp keeps its place after the line before it in its
    own input; ties go to the input named first. One input is taken as it is.
    """
    if len(inputs) == 1:
        return read_lines(inputs[0])

    def keyed(index: int, lines: Iterable[str]) -> Iterator[tuple[float, int, int, Line]]:
        at = float("-inf")
        for line in read_lines(lines):
            if line.timestamp is not None:
                at = max(at, line.timestamp.timestamp())
            if names is not None and line.problem is not None:
                line = msgspec.structs.replace(line, problem=f"{names[index]}: {line.problem}")
            yield at, index, line.number, line

    streams = [keyed(index, lines) for index, lines in enumerate(inputs)]
    return (line for *_, line in heapq.merge(*streams, key=lambda item: item[:3]))


def replay(
    lines: Iterable[str] | Iterable[Line],
    engine: Engine,
    out: IO[str],
    *,
    app_id: str = DEFAULT_APP_ID,
    signer: Signer | None = None,
    ahead: int = 1,
    live: bool = False,
    progress: Progress | None = None,
) -> ReplayResult:
    """Feed ``lines`` through ``engine`` in order, writing each status change to ``out``.

    Each record is taken at its timestamp, when the line has one; the end of
    the input judges every exchange's open moment. With a ``signer`` every
    CloudEvent is signed, as the worker signs it. Lines are decoded ``ahead``
    at a time (see :data:`AHEAD`). A ``live`` input (a pipe that a watcher
    writes as it goes) has each record's CloudEvents flushed to ``out`` as soon as
    they are written, not when a pipe's buffer fills. A ``progress`` is told of each
    batch taken.
    """
    result = ReplayResult()
    currency = engine.policy.reporting_currency

    def publish(changes: Iterable[StatusChange]) -> None:
        for change in changes:
            alert = cloud_event(change, app_id=app_id, currency=currency)
            out.write(json.dumps(signer.sign(alert) if signer else alert) + "\n")
            result.changes += 1
        if live:
            out.flush()

    # the loop of every record: names bound once, each batch's lines walked in place
    take = engine.take
    for batch in batches(_as_lines(lines), ahead, progress):
        for line in batch:
            event = line.event
            if event is None:
                _refused(result, line)
                continue
            step = take(event, line.timestamp)
            if step.changes:
                publish(step.changes)
            count(result, line, step)
    publish(engine.finish().changes)
    return result


class Tally(Protocol):
    """Where a driver of the engine over lines counts outcomes and notes problems."""

    outcomes: Counter[tuple[str, str]]
    problems: list[str]


def events_of(
    lines: Iterable[Line], tally: Tally, ahead: int = 1, progress: Progress | None = None
) -> Iterator[tuple[Line, Event, datetime | None]]:
    """Each line's event with its record timestamp, in order; a line that carries no
    valid event is counted invalid in ``tally``, with its problem, at its place.

    Lines are read and decoded ``ahead`` at a time before the first of them is
    given: 1 for a live input, :data:`AHEAD` for a file.
    """
    for batch in batches(lines, ahead, progress):
        for line in batch:
            if line.event is None:
                _refused(tally, line)
                continue
            yield line, line.event, line.timestamp


def batches(
    lines: Iterable[Line], ahead: int = 1, progress: Progress | None = None
) -> Iterator[list[Line]]:
    """The lines ``ahead`` at a time: each batch is read and decoded before it is given,
    and ``progress`` told of it once it is taken. What survived a full collection of the
    garbage collector meanwhile (the engine's state) is frozen (:mod:`monitor.heap`)."""
    iterator = iter(lines)
    heap = HeapKeeper()  # the engine's state out of the collector's full collections
    try:
        while batch := list(itertools.islice(iterator, ahead)):
            yield batch
            heap.settle()
            if progress is not None:
                last = batch[-1]
                reached = last.timestamp
                if reached is None and last.event is not None:
                    reached = last.event.ts
                progress.taken(len(batch), reached)
    finally:
        heap.close()
        if heap.frozen:
            heap.thaw()  # the caller's objects are its collector's again


def _refused(tally: Tally, line: Line) -> None:
    assert line.problem is not None
    tally.outcomes[(line.topic, Outcome.INVALID.value)] += 1
    tally.problems.append(line.problem)


def count(tally: Tally, line: Line, step: Step) -> None:
    """Count how the engine took ``line``'s event, and note why when it refused it."""
    outcome = step.outcome
    assert outcome is not None
    tally.outcomes[(line.topic, outcome)] += 1  # a StrEnum: the key equals its value's
    if step.error:
        tally.problems.append(f"line {line.number}: {step.error}")


def _as_lines(lines: Iterable[str] | Iterable[Line]) -> Iterable[Line]:
    """Lines as given, or read from text lines (numbered from 1)."""
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        return ()
    if isinstance(first, Line):
        return itertools.chain([first], cast(Iterator[Line], iterator))
    return read_lines(itertools.chain([cast(str, first)], cast(Iterator[str], iterator)))


def summary(engine: Engine, result: ReplayResult) -> str:
    """The final adequacy table and the counts, for stderr."""
    reports = [adequacy_report(engine, exchange) for exchange in sorted(engine.exchanges)]
    lines = [adequacy_table(reports)] if reports else ["no exchange events were replayed"]
    counts = ", ".join(
        f"{topic} {outcome}: {n}" for (topic, outcome), n in sorted(result.outcomes.items())
    )
    lines.append(f"{result.changes} status changes; events: {counts or 'none'}")
    lines.extend(result.problems[:20])
    if len(result.problems) > 20:
        lines.append(f"... and {len(result.problems) - 20} more rejected lines")
    return "\n".join(lines)


def run(
    paths: str | list[str],
    policy: Policy,
    out: IO[str],
    err: IO[str],
    app_id: str,
    signer: Signer | None = None,
    progress_seconds: float | None = None,
) -> int:
    """Replay the files at ``paths`` (``-`` for stdin), merged by record timestamps; a
    replay of files says how far it has come on ``err`` every ``progress_seconds``
    (:data:`~monitor.progress.PROGRESS_SECONDS` unless given)."""
    names = [paths] if isinstance(paths, str) else list(paths)
    engine = Engine(policy, journal=False)  # no durable storage to rebuild from
    with ExitStack() as stack:
        inputs: list[TextIO] = [
            sys.stdin if name == "-" else stack.enter_context(open(name, encoding="utf-8"))
            for name in names
        ]
        lines = merged(inputs, names if len(names) > 1 else None)
        live = "-" in names
        result = replay(
            lines,
            engine,
            out,
            app_id=app_id,
            signer=signer,
            ahead=1 if live else AHEAD,
            live=live,
            progress=None if live else Progress("replay", inputs, err, progress_seconds),
        )
    err.write(summary(engine, result) + "\n")
    return 0
