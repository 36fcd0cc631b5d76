"""``reserve-monitor replay``: the engine driven from JSON Lines, no Kafka.

Each line is one Kafka record: ``{"topic": ..., "value": {...}, "key": ...}``.
Every status change is written to ``out`` as the CloudEvent the worker would
publish; the final adequacy table goes to ``err``. The clock is the newest
event time seen, so the same input always gives the same output.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from monitor.core.alerts import cloud_event
from monitor.core.engine import Engine, Outcome, StatusChange
from monitor.core.errors import InvalidEvent
from monitor.core.events import Topic, decode_document, parse_json
from monitor.core.policy import Policy
from monitor.core.report import adequacy_report, adequacy_table
from monitor.core.signing import Signer

DEFAULT_APP_ID = "reserve-monitor"


@dataclass
class ReplayResult:
    """What a replay counted: outcomes per topic, and the problems with the lines."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    changes: int = 0


def _record(line: str) -> tuple[Topic, str | None, Any]:
    record = parse_json(line.encode("utf-8"))
    if not isinstance(record, dict):
        raise InvalidEvent("line", "must be a JSON object with topic, value and optional key")
    unknown = set(record) - {"topic", "key", "value"}
    if unknown:
        raise InvalidEvent("line", f"unknown fields {sorted(unknown)}")
    try:
        topic = Topic(str(record.get("topic")))
    except ValueError:
        raise InvalidEvent("topic", f"{record.get('topic')!r} is not an input topic") from None
    key = record.get("key")
    if key is not None and not isinstance(key, str):
        raise InvalidEvent("key", "must be a string")
    return topic, key, record.get("value")


def replay(
    lines: Iterable[str],
    engine: Engine,
    out: IO[str],
    *,
    app_id: str = DEFAULT_APP_ID,
    signer: Signer | None = None,
) -> ReplayResult:
    """Feed ``lines`` through ``engine``, writing each status change to ``out``.

    With a ``signer`` every CloudEvent is signed, as the worker signs it.
    """
    result = ReplayResult()
    currency = engine.policy.reporting_currency

    def publish(changes: Iterable[StatusChange]) -> None:
        for change in changes:
            alert = cloud_event(change, app_id=app_id, currency=currency)
            out.write(json.dumps(signer.sign(alert) if signer else alert) + "\n")
            result.changes += 1

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        topic_name = "?"
        try:
            topic, key, value = _record(line)
            topic_name = topic.value
            event = decode_document(topic, key, value)
        except InvalidEvent as error:
            result.outcomes[(topic_name, Outcome.INVALID.value)] += 1
            result.problems.append(f"line {number}: {error}")
            continue
        if engine.clock is not None and event.ts > engine.clock:
            # every event of one moment is in: judge the state as of that moment
            publish(engine.settle().changes)
        step = engine.take(event)
        assert step.outcome is not None
        result.outcomes[(topic_name, step.outcome.value)] += 1
        if step.error:
            result.problems.append(f"line {number}: {step.error}")
    publish(engine.settle().changes)
    return result


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
    path: str, policy: Policy, out: IO[str], err: IO[str], app_id: str, signer: Signer | None = None
) -> int:
    engine = Engine(policy)
    if path == "-":
        result = replay(sys.stdin, engine, out, app_id=app_id, signer=signer)
    else:
        with open(path, encoding="utf-8") as lines:
            result = replay(lines, engine, out, app_id=app_id, signer=signer)
    err.write(summary(engine, result) + "\n")
    return 0
