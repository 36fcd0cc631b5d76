"""Move scenario records to Kafka or to JSON Lines: the thin side of the simulator.

The records come from `monitor.synthetic.scenarios` (pure, deterministic). Here they
are encoded (`encode`), written in the replay format (`write_jsonl`, read back
with `read_jsonl`), or produced to Kafka (`produce`, and `produce_live` for an
endless `steady` stream stamped with the wall clock). `main` is the
``reserve-monitor simulate`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from monitor.synthetic.scenarios import (
    INPUT_TOPICS,
    PRICES,
    SCENARIOS,
    Phase,
    Record,
    event_time,
    format_ts,
    phase_of,
    phases,
    restamp,
    start_ending_at,
    steady,
)
from monitor.synthetic.scenarios import generate as generate_records

if TYPE_CHECKING:
    # aiokafka ships no type information (no py.typed, no stubs).
    from aiokafka import AIOKafkaProducer

DEFAULT_BOOTSTRAP = "localhost:9092"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
TOPIC_PREFIX_ENV = "RESERVE_MONITOR_TOPIC_PREFIX"

# Delivery reports awaited in batches of this many sends: bounded memory, and
# a failed send surfaces within a batch rather than at the very end.
_DELIVERY_BATCH = 1_000

OnSent = Callable[[Record], None]


# -- encoding and JSON Lines ---------------------------------------------------


def encode(record: Record, topic_prefix: str = "") -> tuple[str, bytes, bytes]:
    """``(topic, key, value)`` as produced: UTF-8 key, compact UTF-8 JSON value."""
    value = json.dumps(record.value, separators=(",", ":"), ensure_ascii=False)
    return topic_prefix + record.topic, record.key.encode(), value.encode()


def write_jsonl(records: Iterable[Record], file: TextIO, topic_prefix: str = "") -> int:
    """Write the replay format, one ``{"topic", "key", "value"}`` a line; return the count."""
    written = 0
    for record in records:
        line = {"topic": topic_prefix + record.topic, "key": record.key, "value": record.value}
        file.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
        written += 1
    return written


def read_jsonl(lines: Iterable[str], topic_prefix: str = "") -> Iterator[Record]:
    """Records back from the replay format (what `write_jsonl` wrote).

    `topic_prefix` is stripped where present; a missing ``key`` is the
    event's exchange (its asset for prices), as the contract keys topics.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            topic = entry["topic"].removeprefix(topic_prefix)
            value = entry["value"]
            if topic not in INPUT_TOPICS:
                raise ValueError(f"not an input topic: {entry['topic']!r}")
            default_key = value["asset"] if topic == PRICES else value["exchange"]
            key = entry.get("key", default_key)
            ts = event_time(datetime.fromisoformat(value["ts"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"line {number}: {error!r}") from error
        yield Record(topic, key, value, ts)


# -- Kafka --------------------------------------------------------------------


def _producer(bootstrap: str) -> AIOKafkaProducer:
    # Imported here so the pure parts and their tests never load the client.
    from aiokafka import AIOKafkaProducer

    from monitor.settings import KafkaClientSettings
    from monitor.worker.connection import aiokafka_security

    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="reserve-monitor-simulator",
        acks="all",
        linger_ms=5,
        # TLS and SASL from the same KAFKA_* variables as the worker
        **aiokafka_security(KafkaClientSettings()),
    )


async def _pump(
    bootstrap: str,
    records: Iterable[Record],
    topic_prefix: str,
    wait_turn: Callable[[int, Record], Awaitable[Record | None]],
    on_sent: OnSent | None,
) -> int:
    """Send records in order with a producer of its own, stopped in any case; `wait_turn`
    paces each one (``None``: stop)."""
    producer = _producer(bootstrap)
    try:
        await producer.start()  # one that failed to start is stopped too: what it left open
        pending: list[asyncio.Future[Any]] = []
        sent = 0
        for record in records:
            paced = await wait_turn(sent, record)
            if paced is None:
                break
            topic, key, value = encode(paced, topic_prefix)
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if on_sent is not None:
                on_sent(paced)
            if len(pending) >= _DELIVERY_BATCH:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
        return sent
    finally:
        await producer.stop()


async def produce(
    records: Iterable[Record],
    bootstrap: str,
    topic_prefix: str = "",
    rate: float | None = None,
    *,
    on_sent: OnSent | None = None,
) -> int:
    """Produce `records` in order, at most `rate` a second; return the count sent.

    Every send is acknowledged by all in-sync replicas before this returns;
    the producer is stopped in any case. `on_sent` sees each record as it
    goes (the CLI prints phase changes with it).
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def wait_turn(index: int, record: Record) -> Record:
        if rate is not None:
            delay = began + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        return record

    return await _pump(bootstrap, records, topic_prefix, wait_turn, on_sent)


def live_due(
    index: int,
    record: Record,
    opened: datetime,
    rate: float | None,
    duration: float | None = None,
    count: int | None = None,
) -> float | None:
    """When record number `index` of a live run is due, in seconds after it opened.

    With a `rate` the records are evenly spaced; without one each is due at
    its own event time (the `steady` stream began at `opened`). ``None`` once
    `count` records went out or the next would fall after `duration`.
    """
    if count is not None and index >= count:
        return None
    scheduled = (record.ts - event_time(opened)).total_seconds()
    due = index / rate if rate is not None else scheduled
    if duration is not None and due >= duration:
        return None
    return due


async def produce_live(
    bootstrap: str,
    topic_prefix: str = "",
    rate: float | None = None,
    *,
    duration: float | None = None,
    count: int | None = None,
    exchanges: int = 3,
    seed: int = 1,
    on_sent: OnSent | None = None,
) -> int:
    """Produce `steady` with event time = now until `duration` s or `count` records.

    With a `rate` (events/s) the stream is as dense as asked, and its story
    (a wallet snapshot a minute per exchange, and so on) runs faster or
    slower than the clock; without one each record goes out at its own event
    time. Each record is stamped with the wall clock as it is sent. With
    neither limit it runs until cancelled. Event ids carry the start time, so
    two runs do not collide as duplicates.
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    loop = asyncio.get_running_loop()
    began = loop.time()
    opened = event_time(datetime.now(UTC))
    run = f"live-{opened:%Y%m%dT%H%M%S}-{seed}"

    async def wait_turn(index: int, record: Record) -> Record | None:
        due = live_due(index, record, opened, rate, duration, count)
        if due is None:
            return None
        delay = began + due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return restamp(record, datetime.now(UTC))

    records = steady(opened, seed, exchanges=exchanges, duration=None, run=run)
    return await _pump(bootstrap, records, topic_prefix, wait_turn, on_sent)


# -- command line -------------------------------------------------------------


def _rfc3339(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs an offset such as Z: {text!r}")
    return ts


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``reserve-monitor simulate`` arguments."""
    parser = argparse.ArgumentParser(
        prog="reserve-monitor simulate",
        description="Produce synthetic exchange, wallet, ledger and price events "
        "(contract section 3) to Kafka or to JSON Lines.",
        epilog="scenarios: "
        + "; ".join(f"{name}: {scenario.description}" for name, scenario in SCENARIOS.items()),
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady")
    parser.add_argument("--seed", type=int, default=1, help="default 1")
    parser.add_argument(
        "--start",
        type=_rfc3339,
        help="event time the scenario starts at, RFC 3339 with offset (default: so that it "
        "ends now; a worker refuses events dated ahead of its clock)",
    )
    parser.add_argument("--exchanges", type=_positive(int), help="steady: number of exchanges")
    parser.add_argument(
        "--duration",
        type=_positive(float),
        help="steady: seconds of event time; with --live: seconds of wall time",
    )
    parser.add_argument(
        "--settle-minutes",
        type=int,
        help="dmm-incident: length of the closing quiet stretch (default 60)",
    )
    parser.add_argument("--count", type=_positive(int), help="--live: stop after this many")
    sink = parser.add_mutually_exclusive_group()
    sink.add_argument("--jsonl", metavar="FILE", help="write JSON Lines to FILE (- for stdout)")
    sink.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        default=os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP,
        help=f"Kafka brokers (default ${BOOTSTRAP_ENV} or {DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument(
        "--topic-prefix",
        help=(
            f"prepended to every topic (default for Kafka: ${TOPIC_PREFIX_ENV}; for --jsonl: "
            "none, so that replay reads the file)"
        ),
    )
    parser.add_argument("--rate", type=_positive(float), help="events per second (default: max)")
    parser.add_argument(
        "--live",
        action="store_true",
        help="steady, stamped with the wall clock, until --duration or --count (or Ctrl-C)",
    )
    return parser


def topic_prefix(args: argparse.Namespace) -> str:
    """The prefix of the topics ``args`` write to.

    The deployment's prefix (``$RESERVE_MONITOR_TOPIC_PREFIX``) is Kafka's: JSON Lines
    get a prefix only when asked, since ``replay`` reads bare topic names.
    """
    if args.topic_prefix is not None:
        return str(args.topic_prefix)
    return "" if args.jsonl is not None else os.environ.get(TOPIC_PREFIX_ENV, "")


class _PhaseAnnouncer:
    """Prints each phase label once, when its first record goes out."""

    def __init__(self, scenario_phases: Sequence[Phase], out: TextIO) -> None:
        self._phases = scenario_phases
        self._out = out
        self._current: Phase | None = None

    def __call__(self, record: Record) -> None:
        phase = phase_of(record, self._phases)
        if phase is not None and phase != self._current:
            self._current = phase
            print(f"{format_ts(phase.starts)}  {phase.label}", file=self._out, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``reserve-monitor simulate``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.topic_prefix = topic_prefix(args)
    stderr = sys.stderr
    if args.live:
        if args.jsonl is not None:
            parser.error("--live produces to Kafka; it cannot write --jsonl")
        if args.scenario != "steady":
            parser.error("--live plays the steady scenario only")
        sent = asyncio.run(
            produce_live(
                args.bootstrap,
                args.topic_prefix,
                args.rate,
                duration=args.duration,
                count=args.count,
                exchanges=args.exchanges or 3,
                seed=args.seed,
            )
        )
        print(f"sent {sent} records to {args.bootstrap}", file=stderr)
        return 0
    if args.count is not None:
        parser.error("--count applies to --live only")

    params: dict[str, Any] = {}
    if args.exchanges is not None:
        params["exchanges"] = args.exchanges
    if args.duration is not None:
        params["duration"] = args.duration
    if args.settle_minutes is not None:
        params["settle_minutes"] = args.settle_minutes
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        start = args.start or start_ending_at(args.scenario, now, args.seed, **params)
        records = generate_records(args.scenario, start, args.seed, **params)
        scenario_phases = phases(args.scenario, start, args.seed, **params)
    except ValueError as error:
        parser.error(str(error))

    if args.jsonl is not None:
        for phase in scenario_phases:
            print(f"{format_ts(phase.starts)}  {phase.label}", file=stderr)
        if args.jsonl == "-":
            written = write_jsonl(records, sys.stdout, args.topic_prefix)
        else:
            with open(args.jsonl, "w", encoding="utf-8") as file:
                written = write_jsonl(records, file, args.topic_prefix)
        print(f"wrote {written} records", file=stderr)
        return 0

    announce = _PhaseAnnouncer(scenario_phases, stderr)
    began = time.monotonic()
    sent = asyncio.run(
        produce(records, args.bootstrap, args.topic_prefix, args.rate, on_sent=announce)
    )
    elapsed = time.monotonic() - began
    print(
        f"sent {sent} records to {args.bootstrap} "
        f"(topic prefix {args.topic_prefix!r}) in {elapsed:.1f} s",
        file=stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
