"""(e) ``replay`` of the steady 50-exchange scenario against bare ``json.loads`` (issue #10).

The simulator writes the scenario to JSON Lines (about 20,000 lines, from a fixed
start, so every run reads the same lines). On those lines, each figure the best
of ``repeats`` runs (the run least disturbed by the rest of the machine):

- ``replay``: events/s of :func:`monitor.replay.replay` in this process, reading a file
  (lines decoded :data:`monitor.replay.AHEAD` at a time), on an
  engine built as ``reserve-monitor replay`` builds it (no journal), its
  CloudEvents written to a sink that keeps nothing;
- bare parse: events/s of ``json.loads`` alone over the same lines, and the
  ratio of the two times (issue #10's target: replay at 100,000 events/s or
  more, and no more than 3 times the bare parse);
- the profile, µs per event: decode (:func:`monitor.core.events.lines.decode_line` of
  every line, as replay reads it, timed alone) and engine
  (``take`` of every decoded event and ``finish``, timed over events decoded
  beforehand). What replay spends besides is its own reading of the lines
  (if it reads them otherwise than timed here) and the CloudEvents it writes.

Wall time (``perf_counter``), as a user of ``replay`` sees it.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from monitor.core.engine import Engine
from monitor.core.events import Topic, decode
from monitor.core.policy import Policy, load_policy
from monitor.replay import AHEAD, replay

try:  # a line read whole, in one pass, as replay reads it
    from monitor.core.events.lines import decode_line
except ImportError:  # pragma: no cover - an older core
    decode_line = None  # type: ignore[assignment]
try:  # the line parser before it; the replay module's own reader before that
    from monitor.core.events.lines import parse_line
except ImportError:  # pragma: no cover - an older core
    parse_line = None  # type: ignore[assignment]

EXCHANGES = 50
# a fixed start: the same lines at every run, whatever the day
START = "2026-01-01T00:00:00Z"
SEED = 1


class _Sink:
    """A text output that keeps nothing (replay's CloudEvents)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def scenario(directory: Path, exchanges: int = EXCHANGES) -> Path:
    """The steady scenario as JSON Lines, written by the simulator's command line."""
    path = directory / f"steady-{exchanges}.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.synthetic.simulator",
            "--scenario",
            "steady",
            "--exchanges",
            str(exchanges),
            "--seed",
            str(SEED),
            "--start",
            START,
            "--jsonl",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return path


def _replay_seconds(lines: list[str], policy: Policy) -> tuple[float, int]:
    engine = Engine(policy, journal=False)  # as monitor.replay.run builds it, for a file
    started = time.perf_counter()
    result = replay(lines, engine, _Sink(), ahead=AHEAD)  # type: ignore[arg-type]
    return time.perf_counter() - started, result.changes


def _bare_seconds(lines: list[str]) -> float:
    loads = json.loads
    started = time.perf_counter()
    for line in lines:
        loads(line)
    return time.perf_counter() - started


_DECODER = (
    "decode_line"
    if decode_line is not None
    else "parse_line + decode"
    if parse_line is not None
    else "json.loads + decode"
)


def _decoded(lines: list[str]) -> tuple[float, list[tuple[Any, Any]]]:
    """Every line parsed and its event decoded: the time, and (event, append time) pairs."""
    events: list[tuple[Any, Any]] = []
    add = events.append
    if decode_line is not None:
        started = time.perf_counter()
        for line in lines:
            read = decode_line(line)
            add((read.event, read.timestamp))
        return time.perf_counter() - started, events
    if parse_line is not None:
        started = time.perf_counter()
        for line in lines:
            record = parse_line(line)
            add((decode(record.topic, record.key, record.value), record.timestamp))
        return time.perf_counter() - started, events
    # no monitor.core.events.lines (an older core): the envelope read with the standard library
    started = time.perf_counter()
    for line in lines:
        record = json.loads(line)
        value = json.dumps(record["value"]).encode()
        add((decode(Topic(record["topic"]), record.get("key"), value), None))
    return time.perf_counter() - started, events


def _engine_seconds(events: list[tuple[Any, Any]], policy: Policy) -> tuple[float, int, int]:
    """take + finish over decoded events: the time, the changes, the moments judged."""
    engine = Engine(policy, journal=False)
    take = engine.take
    changes = judged = 0
    started = time.perf_counter()
    for event, appended in events:
        step = take(event, appended)
        changes += len(step.changes)
        judged += len(step.evaluated)
    step = engine.finish()
    elapsed = time.perf_counter() - started
    return elapsed, changes + len(step.changes), judged + len(step.evaluated)


def replay_eps(lines: list[str], repeats: int = 3) -> tuple[float, int]:
    """Events/s of ``replay`` on ``lines`` (the best of ``repeats`` runs), and its changes.

    ``bench/run.py`` times it on the very records it pre-fills the input topics
    with, to set the worker's rate beside it.
    """
    policy = load_policy(os.environ.get("RESERVE_MONITOR_POLICY") or None)
    gc.collect()
    runs = [_replay_seconds(lines, policy) for _ in range(repeats)]
    return len(lines) / min(seconds for seconds, _ in runs), runs[0][1]


def measure(directory: Path, repeats: int = 3) -> dict[str, Any]:
    """The figures of (e), printed as they come; a dict for ``results.json``."""
    path = scenario(directory)
    lines = path.read_text(encoding="utf-8").splitlines()
    count = len(lines)
    policy = load_policy(os.environ.get("RESERVE_MONITOR_POLICY") or None)
    gc.collect()

    # each round times every part once, so a slow spell of the machine weighs on all the
    # parts alike rather than on whichever was timed then; the best round of each is kept
    replays: list[tuple[float, int]] = []
    bares: list[float] = []
    decode_times: list[float] = []
    engines: list[tuple[float, int, int]] = []
    for _ in range(repeats):
        replays.append(_replay_seconds(lines, policy))
        bares.append(_bare_seconds(lines))
        decode_seconds, events = _decoded(lines)
        decode_times.append(decode_seconds)
        engines.append(_engine_seconds(events, policy))
    replay_s = min(seconds for seconds, _ in replays)
    changes = replays[0][1]
    bare_s = min(bares)
    decode_s = min(decode_times)
    engine_s = min(seconds for seconds, *_ in engines)
    _, engine_changes, judged = engines[0]

    per = lambda seconds: seconds / count * 1e6  # noqa: E731  µs per event
    rest = per(replay_s) - per(decode_s) - per(engine_s)
    figures = {
        "file": f"simulator steady, {EXCHANGES} exchanges, seed {SEED}, from {START}",
        "lines": count,
        "repeats": repeats,
        "replay_eps": round(count / replay_s),
        # every round's: their spread is the machine's noise in this run
        "replay_eps_rounds": [round(count / seconds) for seconds, _ in replays],
        "bare_json_loads_eps": round(count / bare_s),
        "replay_to_bare_json_loads": round(replay_s / bare_s, 2),
        "replay_us_per_event": round(per(replay_s), 2),
        "decode_us_per_event": round(per(decode_s), 2),
        "decoder": _DECODER,
        "engine_us_per_event": round(per(engine_s), 2),
        "rest_us_per_event": round(rest, 2),
        "changes": changes,
        "engine_changes": engine_changes,
        "moments_judged_per_event": round(judged / count, 3),
    }
    print(
        f"  (e) replay, {count:,} lines of the steady {EXCHANGES}-exchange scenario "
        f"(best of {repeats}):",
        flush=True,
    )
    rounds = ", ".join(f"{eps:,}" for eps in figures["replay_eps_rounds"])
    print(
        f"      replay                    {count / replay_s:12,.0f} events/s"
        f"   (target >= 100,000; {changes} changes; rounds {rounds}: their spread is "
        "the machine's noise)",
        flush=True,
    )
    print(f"      bare json.loads           {count / bare_s:12,.0f} events/s", flush=True)
    print(
        f"      replay / bare json.loads  {replay_s / bare_s:12.2f} x the time   (target <= 3)",
        flush=True,
    )
    print(
        f"      µs per event: replay {per(replay_s):.2f} = decode {per(decode_s):.2f} "
        f"({figures['decoder']}) + engine {per(engine_s):.2f} (take + finish) "
        f"+ the rest {rest:.2f}; {judged / count:.2f} moments judged per event"
        + (
            " (the parts are timed apart: a negative rest is the machine's noise)"
            if rest < 0
            else ""
        ),
        flush=True,
    )
    if engine_changes != changes:
        print(
            f"      (the engine alone made {engine_changes} changes, replay {changes})",
            flush=True,
        )
    return figures


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        measure(Path(tmp))
